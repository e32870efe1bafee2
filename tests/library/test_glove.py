"""GloVe from the package and from text files: same matrix, the study's fill rules, clear errors."""

import numpy as np
import pytest

from reviewlstm.errors import InputError
from reviewlstm.glove import count_found, embedding_matrix, package_vectors, text_vectors

OOV = ["UNK", "qqzxv", "  "]  # never in GloVe (it is lowercase and has no whitespace)


@pytest.fixture(scope="module")
def package():
    return package_vectors()


def test_package_vectors(package):
    words, vectors = package
    assert len(words) == 400_000 and vectors.shape == (400_000, 50) and vectors.dtype == np.float32
    assert words[:3] == ["the", ",", "."]


def write_glove(path, words, vectors, header=False):
    lines = [f"{len(words)} {vectors.shape[1]}"] if header else []
    lines += [w + " " + " ".join("%.5g" % x for x in v) for w, v in zip(words, vectors)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [False, True])
def test_text_file_and_package_give_the_same_matrix(tmp_path, package, header):
    words, vectors = package
    picked = [words[i] for i in range(0, 5000, 100)]  # 50 words
    path = write_glove(tmp_path / "glove.txt", picked, vectors[0:5000:100], header=header)
    text_words, text_vecs = text_vectors(path)
    assert text_words == picked and text_vecs.dtype == np.float32
    vocab = ["", *OOV[:1], *picked[::-1], *OOV[1:]]
    from_package = embedding_matrix(vocab, words, vectors, seed=3, dim=50)
    from_text = embedding_matrix(vocab, text_words, text_vecs, seed=3, dim=50)
    np.testing.assert_allclose(from_text, from_package, atol=1e-4, rtol=0)
    assert count_found(vocab, words) == count_found(vocab, text_words) == 50


def test_fill_rules_padding_oov_and_seed():
    words = ["good", "bad", "dress"]
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    vocab = ["", "UNK", "dress", "fabric", "good", "zipper"]
    m = embedding_matrix(vocab, words, vectors, seed=0)
    assert m.shape == (6, 4) and m.dtype == np.float32
    assert np.all(m[0] == 0)  # padding
    np.testing.assert_array_equal(m[2], vectors[2])
    np.testing.assert_array_equal(m[4], vectors[0])
    oov = m[[1, 3, 5]]
    assert np.all((oov >= -0.25) & (oov < 0.25)) and len(np.unique(oov)) == oov.size
    np.testing.assert_array_equal(m, embedding_matrix(vocab, words, vectors, seed=0))
    assert not np.array_equal(oov, embedding_matrix(vocab, words, vectors, seed=1)[[1, 3, 5]])
    assert count_found(vocab, words) == 2
    assert count_found(["good"], words) == 0  # row 0 is padding whatever its word


def test_first_of_duplicate_words_wins():
    m = embedding_matrix(["", "a"], ["a", "a"], np.array([[1.0], [2.0]], np.float32), seed=0)
    assert m[1, 0] == 1.0


def test_dimension_mismatch_names_both():
    with pytest.raises(InputError, match=r"4 dimensions.*embedding_dim is 50"):
        embedding_matrix(["", "a"], ["a"], np.ones((1, 4), np.float32), seed=0, dim=50)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"bad\.txt: no such file"),
        (b"", r"bad\.txt: the file is empty"),
        (b"a 1 2 3\nb 1 2\n", r"bad\.txt: line 2 has 2 numbers, but line 1 has 3"),
        (b"a 1 2 3\nb 1 2 3\nc 1 2 3 4 5\n", r"line 3 has 5 numbers, but line 1 has 3"),
        (b"2 3\na 1 2\nb 1 2\n", r"line 2 has 2 numbers, but the header has 3"),
        (b"3 2\na 1 2\nb 1 2\n", r"the header announces 3 words, but the file has 2"),
        (b"a 1 2\nb 1 x\n", r"line 2: 'x' is not a number"),
        (b"a 1 2\n\nb 1 2\n", r"line 2 is empty"),
        (b"a\nb\n", r"line 1 has a word but no numbers"),
        (b"a 1 2\n\xff\xfe 1 2\n", r"line 2 is not UTF-8 text"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        text_vectors(path)
    assert "\n" not in str(err.value)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        text_vectors(tmp_path)
