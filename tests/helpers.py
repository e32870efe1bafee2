"""What tests share besides fixtures: paths, the real data set, small review files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"
needs_real_data = pytest.mark.skipif(not REAL_DATA.is_file(), reason=f"real data set not found at {REAL_DATA}")

HEADER = ["", "Clothing ID", "Age", "Title", "Review Text", "Rating"]


def write_reviews(path: Path, rows: list[tuple[str, str, int | str]], header: list[str] = HEADER) -> Path:
    """A CSV shaped like the real export: (title, review text, rating) per row."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, (title, text, rating) in enumerate(rows):
            w.writerow([i, 1000 + i, 30, title, text, rating])
    return path


SAMPLE = [
    ("Love it", "Absolutely wonderful - silky and sexy and comfortable", 5),
    ("", "Love this dress!  it's sooo pretty.  i happened to find it in a store", 5),
    ("Some major design flaws", "I had such high hopes for this dress and really wanted it to work for me.", 3),
    ("My favorite buy!", "I love, love, love this jumpsuit. it's fun, flirty, and fabulous!", 5),
    ("Flattering shirt", "This shirt is very flattering to all due to the adjustable front tie.", 5),
    ("Not for the very petite", "I love tracy reese dresses, but this one is not for the very petite.", 2),
    ("Cagrcoal shimmer fun", "I aded this in my basket at hte last mintue to see what it would look like", 5),
    ("Shimmer, surprisingly goes with lots", "I ordered this in carbon for store pick up, and had a ton of stuff", 4),
    ("Flattering", "I love this dress. i usually get an xs but it runs a little snug", 5),
    ("Such a fun dress!", "I'm 5\"5' and 125 lbs. i ordered the s petite to make sure the length wasn't too long", 5),
    ("Dress looks like it's made of cheap material", "Dress runs small esp where the zipper area runs.", 3),
    ("", "", 4),
    ("Perfect!!!", "More and more i find myself reliant on the reviews written by savvy shoppers", 5),
    ("Runs big", "Bought the black xs to go under the larkspur midi dress because they didn't bother", 4),
    ("Pretty party dress with some issues", "This is a nice choice for holiday gatherings. i like that the length", 3),
    ("Nice, but not for my body", "I took these out of the package and wanted them to fit so badly", 1),
    ("You need to be at least average height", "Material and color is nice. the leg opening is very large", 2),
    ("Looks great with white pants", "Took a chance on this blouse and so glad i did. i wasn't crazy about", 5),
    ("Super cute and cozy", "A flattering, super cozy coat.  will work well for cold, dry days", 5),
    ("Stylish and comfortable", "I love the look and feel of this tulle dress. i was looking for something", 4),
]
