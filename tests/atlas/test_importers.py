"""import_dataset, format by format, on tiny fixtures in each dataset's real column layout."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from atlas.models import ConditionLabelMapping, Image, Region, Source
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


# --- fixture builders -----------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_image(folder: Path, name: str, seed: int, *, fmt: str | None = None, size=(64, 48)) -> Path:
    fmt = fmt or ("PNG" if name.endswith(".png") else "JPEG")
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (90 + (seed * 37) % 150, 60 + (seed * 53) % 150, 40 + (seed * 71) % 150)
    path.write_bytes(make_image_bytes(*size, color=colour, seed=seed, fmt=fmt))
    return path


def write_broken_jpeg(folder: Path, name: str) -> Path:
    data = make_image_bytes(128, 128, seed=999, quality=95)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def run_import(fmt: str, metadata: Path, images: Path, *args: str, **options) -> str:
    out = io.StringIO()
    call_command("import_dataset", fmt, str(metadata), f"--images={images}", "--no-progress", *args, stdout=out, **options)
    return out.getvalue()


def ham10000(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "images"
    for seed, (part, image_id) in enumerate(
        [("part_1", "ISIC_0027419"), ("part_1", "ISIC_0025030"), ("part_2", "ISIC_0026769"),
         ("part_2", "ISIC_0031633"), ("part_2", "ISIC_0029176")]
    ):
        write_image(images / f"HAM10000_images_{part}", f"{image_id}.jpg", seed)
    write_broken_jpeg(images / "HAM10000_images_part_2", "ISIC_0024310.jpg")
    metadata = write_csv(
        tmp_path / "HAM10000_metadata.csv",
        ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"],
        [
            ["HAM_0000118", "ISIC_0027419", "bkl", "histo", "80.0", "male", "scalp"],
            ["HAM_0000118", "ISIC_0025030", "bkl", "histo", "80.0", "male", "scalp"],
            ["HAM_0002730", "ISIC_0026769", "mel", "histo", "80.0", "male", "scalp"],
            ["HAM_0001466", "ISIC_0031633", "nv", "follow_up", "75.0", "male", "ear"],
            ["HAM_0002761", "ISIC_0029176", "df", "consensus", "60.0", "female", "unknown"],
            ["HAM_0005678", "ISIC_0099999", "mel", "histo", "45.0", "female", "back"],  # no such file
            ["HAM_0006001", "ISIC_0024310", "nv", "histo", "50.0", "male", "trunk"],  # truncated JPEG
        ],
    )
    return metadata, images, []


def fitzpatrick17k(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "data" / "finalfitz17k"
    hashes = [f"{n:032x}" for n in (0x5E82A45BC5D78BD24AE9202CABDBA, 0xFA2911A9B13B6A2BCB2F2B4B7B5B1A, 0xD0B7B0E7E3F9,
                                     0xA1, 0xA2, 0xA3)]
    for seed, md5 in enumerate(hashes[:5]):
        write_image(images, f"{md5}.jpg", seed + 10)
    header = ["md5hash", "fitzpatrick_scale", "fitzpatrick_centaur", "label", "nine_partition_label",
              "three_partition_label", "qc", "url", "url_alphanum"]
    url = "https://www.dermaamin.com/site/images/clinical-pic/p/psoriasis/psoriasis1.jpg"
    metadata = write_csv(
        tmp_path / "fitzpatrick17k.csv",
        header,
        [
            [hashes[0], 3, 3, "psoriasis", "inflammatory", "non-neoplastic", "", url, "x"],
            [hashes[1], -1, 5, "lentigo maligna", "malignant melanoma", "malignant", "1 Diagnostic", url, "x"],
            [hashes[2], -1, -1, "kaposi sarcoma", "malignant dermal", "malignant", "", url, "x"],
            [hashes[3], 6, 6, "kaposi sarcoma", "malignant dermal", "malignant", "", url, "x"],
            [hashes[4], 2, 2, "psoriasis", "inflammatory", "non-neoplastic", "3 Wrongly labelled", url, "x"],
            [hashes[5], 4, 4, "acne vulgaris", "inflammatory", "non-neoplastic", "", url, "x"],  # image missing
        ],
    )
    return metadata, images, []


def ddi(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "ddidiversedermatologyimages"
    for seed, name in enumerate(["000001.png", "000002.png", "000003.png", "000004.png"]):
        write_image(images, name, seed + 20)
    metadata = write_csv(
        images / "ddi_metadata.csv",
        ["", "DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"],
        [
            [0, 1, "000001.png", 56, "True", "melanoma-in-situ"],
            [1, 2, "000002.png", 12, "False", "verruca-vulgaris"],
            [2, 3, "000003.png", 34, "False", "lipoma"],
            [3, 4, "000004.png", 78, "False", "melanoma"],  # not a DDI skin-tone group
        ],
    )
    return metadata, images, []


SCIN_CASES = ["case_id", "source", "release", "year", "age_group", "sex_at_birth", "fitzpatrick_skin_type",
              "body_parts_arm", "body_parts_leg", "body_parts_torso_front", "image_1_path", "image_2_path",
              "image_3_path", "image_1_shot_type", "image_2_shot_type", "image_3_shot_type"]
SCIN_LABELS = ["case_id", "dermatologist_gradable_for_skin_condition_1", "dermatologist_skin_condition_on_label_name",
               "dermatologist_skin_condition_confidence", "weighted_skin_condition_label",
               "dermatologist_gradable_for_fitzpatrick_skin_type_1", "dermatologist_fitzpatrick_skin_type_label_1",
               "dermatologist_fitzpatrick_skin_type_label_2", "dermatologist_fitzpatrick_skin_type_label_3",
               "gradable_for_monk_skin_tone_india", "gradable_for_monk_skin_tone_us", "monk_skin_tone_label_india",
               "monk_skin_tone_label_us"]


def scin(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "scin"
    ids = ["-1000600354148496558", "1003455931240474123", "-7788996655443322110", "5566778899001122334",
           "-123456789012345678"]
    for seed, name in enumerate(["a1", "a2", "b1", "c1", "d1", "d2", "e1"]):
        write_image(images / "dataset" / "images", f"{name}.png", seed + 30)
    cases = write_csv(
        tmp_path / "dx-scin-public-data" / "dataset" / "scin_cases.csv",
        SCIN_CASES,
        [
            [ids[0], "SCIN", "1.0.0", 2023, "AGE_30_TO_39", "FEMALE", "FST3", "YES", "", "",
             "dataset/images/a1.png", "dataset/images/a2.png", "", "CLOSE_UP", "AT_AN_ANGLE", ""],
            [ids[1], "SCIN", "1.0.0", 2023, "AGE_18_TO_29", "MALE", "FST2", "", "YES", "",
             "dataset/images/b1.png", "", "", "CLOSE_UP", "", ""],
            [ids[2], "SCIN", "1.0.0", 2023, "AGE_40_TO_49", "FEMALE", "NONE_SELECTED", "", "", "YES",
             "dataset/images/c1.png", "", "", "CLOSE_UP", "", ""],
            [ids[3], "SCIN", "1.0.0", 2023, "AGE_50_TO_59", "MALE", "FST5", "YES", "", "",
             "dataset/images/d1.png", "dataset/images/d2.png", "", "CLOSE_UP", "AT_DISTANCE", ""],
            [ids[4], "SCIN", "1.0.0", 2023, "AGE_60_TO_69", "FEMALE", "FST1", "", "YES", "",
             "dataset/images/e1.png", "", "", "CLOSE_UP", "", ""],
        ],
    )
    write_csv(
        cases.with_name("scin_labels.csv"),
        SCIN_LABELS,
        [
            [ids[0], "YES", "['Nummular eczema', 'Psoriasis vulgaris']", "[4, 2]", "{'Eczema': 0.69, 'Psoriasis': 0.31}",
             "YES", "FST4", "FST4", "FST5", "YES", "YES", "5", "6"],
            [ids[1], "YES", "['Tinea corporis']", "[3]", "{'Tinea': 1.0}", "NO", "", "", "", "YES", "NO", "3", ""],
            [ids[2], "NO", "", "", "{}", "NO", "", "", "", "NO", "NO", "", ""],  # ungradable
            [ids[3], "YES", "['Insect bite']", "[3]", "{'Insect Bite': 1.0}", "YES", "FST6", "", "", "YES", "YES", "", "9"],
            [ids[4], "YES", "['Acne vulgaris']", "[5]", "{'Acne': 1.0}", "YES", "FST3", "FST5", "", "YES", "YES", "", "2"],
        ],
    )
    return cases, images, []


PAD_HEADER = ["patient_id", "lesion_id", "smoke", "drink", "background_father", "background_mother", "age",
              "pesticide", "gender", "skin_cancer_history", "cancer_history", "has_piped_water", "has_sewage_system",
              "fitspatrick", "region", "diameter_1", "diameter_2", "diagnostic", "itch", "grew", "hurt", "changed",
              "bleed", "elevation", "img_id", "biopsed"]


def pad_row(patient: str, lesion: str, fitspatrick: str, region: str, diagnostic: str, img_id: str, biopsed: str):
    return [patient, lesion, "False", "False", "POMERANIA", "POMERANIA", 55, "False", "FEMALE", "True", "True",
            "True", "True", fitspatrick, region, 6.0, 5.0, diagnostic, "True", "False", "False", "False", "False",
            "True", img_id, biopsed]


def pad_ufes_20(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "images"
    for seed, (part, name) in enumerate(
        [("imgs_part_1", "PAT_1516_1765_530.png"), ("imgs_part_2", "PAT_46_881_939.png"),
         ("imgs_part_3", "PAT_771_1489_690.png")]
    ):
        write_image(images / part, name, seed + 40)
    metadata = write_csv(
        tmp_path / "metadata.csv",
        PAD_HEADER,
        [
            pad_row("PAT_1516", "1765", "3.0", "NECK", "NEV", "PAT_1516_1765_530.png", "False"),
            pad_row("PAT_46", "881", "", "FACE", "BCC", "PAT_46_881_939.png", "True"),
            pad_row("PAT_771", "1489", "6.0", "CHEST", "SCC", "PAT_771_1489_690.png", "True"),
            pad_row("PAT_9", "9", "2.0", "BACK", "MEL", "PAT_9_9_9.png", "True"),  # no such image
        ],
    )
    return metadata, images, []


def manifest(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images = tmp_path / "clinic"
    for seed, name in enumerate(["2024/a.jpg", "2024/b.png", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg"]):
        write_image(images, name, seed + 50)
    write_image(tmp_path, "outside.jpg", 99)
    metadata = write_csv(
        tmp_path / "manifest.csv",
        ["path", "condition", "fitzpatrick_type", "fitzpatrick_label_source", "boxes", "licence", "attribution",
         "body_site", "case_id"],
        [
            ["2024/a.jpg", "melanoma", "5", "dermatologist", "1,1,10,10; 20,20,5,5", "", "Dr A. Example", "back", "c1"],
            ["2024/b.png", "Mole", "V", "estimated", "", "", "", "", "c1"],
            ["c.jpg", "Basal cell carcinoma", "", "", "60,0,10,10", "", "", "", ""],  # box past the 64 px edge
            ["d.jpg", "unicorn rash", "", "", "", "", "", "", ""],
            ["e.jpg", "psoriasis", "3", "", "", "", "", "", ""],  # a type without its source
            ["f.jpg", "acne", "", "", "1,2,3", "", "", "", ""],
            ["../outside.jpg", "acne", "", "", "", "", "", "", ""],
            ["g.jpg", "acne", "", "", "", "CC-BY-NC-4.0", "", "", ""],  # NC inside a training-allowed source
        ],
    )
    return metadata, images, ["--source=Example clinic", "--licence=CC-BY-4.0", "--allow-generative-training"]


BUILDERS = {
    "manifest": manifest,
    "fitzpatrick17k": fitzpatrick17k,
    "ham10000": ham10000,
    "ddi": ddi,
    "scin": scin,
    "pad-ufes-20": pad_ufes_20,
}
EXPECTED_IMPORTED = {"manifest": 2, "fitzpatrick17k": 2, "ham10000": 5, "ddi": 2, "scin": 4, "pad-ufes-20": 3}


def by_external_id() -> dict[str, Image]:
    return {image.external_id: image for image in Image.objects.select_related("condition", "source")}


def media_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file())


# --- behaviour shared by every format -------------------------------------------------------


@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_a_rerun_adds_nothing_twice(fmt, tmp_path, media_root):
    metadata, images, args = BUILDERS[fmt](tmp_path)
    first = run_import(fmt, metadata, images, *args)
    count, files = Image.objects.count(), media_files(media_root)
    assert count == EXPECTED_IMPORTED[fmt], first
    assert f"imported:   {count}" in first

    second = run_import(fmt, metadata, images, *args)
    assert "imported:   0" in second and f"duplicates: {count}" in second
    assert Image.objects.count() == count and media_files(media_root) == files
    assert Source.objects.count() == 1


@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_a_missing_required_column_is_named_and_nothing_is_imported(fmt, tmp_path, media_root):
    metadata, images, args = BUILDERS[fmt](tmp_path)
    required = {"manifest": "condition", "fitzpatrick17k": "qc", "ham10000": "dx", "ddi": "skin_tone",
                "scin": "image_1_path", "pad-ufes-20": "fitspatrick"}[fmt]
    with metadata.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    drop = rows[0].index(required)
    write_csv(metadata, [c for i, c in enumerate(rows[0]) if i != drop], [[v for i, v in enumerate(r) if i != drop] for r in rows[1:]])

    with pytest.raises(CommandError, match=f"missing the required column '{required}'"):
        run_import(fmt, metadata, images, *args)
    assert Image.objects.count() == 0 and Region.objects.count() == 0
    assert Source.objects.count() == 0
    assert media_files(media_root) == []


def test_the_progress_bar_goes_to_stderr(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_dataset", "ham10000", str(metadata), f"--images={images}", stdout=out, stderr=err)
    assert "import ham10000" in err.getvalue() and "7/7" in err.getvalue()
    assert "import ham10000" not in out.getvalue()


def test_limit_reads_only_the_first_rows(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    output = run_import("ham10000", metadata, images, "--limit=3")
    assert "rows read:  3, naming 3 images" in output
    assert sorted(by_external_id()) == ["ISIC_0025030", "ISIC_0026769", "ISIC_0027419"]


def test_an_unknown_format_is_refused(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    with pytest.raises(CommandError, match="invalid choice"):
        run_import("isic2099", metadata, images)


def test_a_missing_images_folder_is_a_clear_error(tmp_path):
    metadata, _, _ = ham10000(tmp_path)
    with pytest.raises(CommandError, match="images folder not found"):
        run_import("ham10000", metadata, tmp_path / "nowhere")
    assert Source.objects.count() == 0


def test_an_edited_mapping_is_used_on_the_next_run(tmp_path, melanoma):
    metadata, images, _ = fitzpatrick17k(tmp_path)
    run_import("fitzpatrick17k", metadata, images)
    assert not Image.objects.filter(external_id__startswith="0000000000000000000000000000a1").exists()
    ConditionLabelMapping.objects.create(dataset="fitzpatrick17k", label="Kaposi Sarcoma", condition=melanoma)
    output = run_import("fitzpatrick17k", metadata, images)
    assert "unmapped labels: 0" in output and "imported:   2" in output


# --- per format -----------------------------------------------------------------------------


def test_ham10000(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    output = run_import("ham10000", metadata, images)
    images_by_id = by_external_id()
    assert {key: image.condition.slug for key, image in images_by_id.items()} == {
        "ISIC_0027419": "sk-isk", "ISIC_0025030": "sk-isk", "ISIC_0026769": "melanoma",
        "ISIC_0031633": "melanocytic-nevus", "ISIC_0029176": "other",
    }
    first = images_by_id["ISIC_0027419"]
    # HAM10000 has no skin type: a skin-coloured photo gets its measured type, marked as such.
    assert first.fitzpatrick_label_source == "colour_estimate" and first.fitzpatrick_type == first.measured_fitzpatrick_type == 6
    estimated = Image.objects.filter(fitzpatrick_label_source="colour_estimate").count()
    assert estimated >= 1 and f"({estimated} given a type estimated from the skin colour, the rest stored with none)" in output
    assert first.case_id == "HAM_0000118" and first.body_site == "scalp"
    assert images_by_id["ISIC_0029176"].body_site == ""  # "unknown"
    assert first.provenance["dx_type"] == "histo" and first.provenance["row"] == 2
    source = first.source
    assert (source.name, source.licence, source.allows_generative_training) == ("HAM10000", "CC-BY-NC-4.0", False)
    assert first.licence == "CC-BY-NC-4.0" and "Tschandl" in first.attribution
    assert "missing_file: 1" in output and "row 7: image 'ISIC_0099999' not found" in output
    assert "corrupt: 1" in output and "row 8: ISIC_0024310.jpg: the image is truncated" in output


def test_fitzpatrick17k(tmp_path):
    metadata, images, _ = fitzpatrick17k(tmp_path)
    output = run_import("fitzpatrick17k", metadata, images)
    images_by_id = {image.condition.slug: image for image in Image.objects.select_related("condition")}
    assert set(images_by_id) == {"psoriasis", "melanoma"}
    assert (images_by_id["psoriasis"].fitzpatrick_type, images_by_id["psoriasis"].fitzpatrick_label_source) == (3, "estimated")
    assert images_by_id["melanoma"].fitzpatrick_type == 5  # scale -1 (unknown), centaur 5; "lentigo maligna"
    assert "dermaamin.com" in images_by_id["psoriasis"].attribution
    assert "wrongly_labelled: 1" in output and "row 6: quality control says '3 Wrongly labelled'" in output
    assert "'kaposi sarcoma': 2" in output and "unmapped labels: 1 (2 rows not imported)" in output
    assert "missing_file: 1" in output and "row 7:" in output
    assert Source.objects.get().allows_generative_training is False


def test_fitzpatrick17k_unknown_skin_type_is_stored_as_unknown(tmp_path, melanoma):
    metadata, images, _ = fitzpatrick17k(tmp_path)
    ConditionLabelMapping.objects.create(dataset="fitzpatrick17k", label="kaposi sarcoma", condition=melanoma)
    run_import("fitzpatrick17k", metadata, images)
    unknown = Image.objects.get(external_id=f"{0xD0B7B0E7E3F9:032x}")
    assert unknown.fitzpatrick_type is None and unknown.fitzpatrick_label_source == ""
    assert Image.objects.get(external_id=f"{0xA1:032x}").fitzpatrick_type == 6


def test_ddi(tmp_path):
    metadata, images, _ = ddi(tmp_path)
    output = run_import("ddi", metadata, images)
    melanoma, wart = Image.objects.get(external_id="1"), Image.objects.get(external_id="2")
    assert melanoma.condition.slug == "melanoma" and wart.condition.slug == "verruca-vulgaris"
    # A pair of types is not one type: nothing stored in fitzpatrick_type, the pair kept as provenance.
    assert melanoma.fitzpatrick_type is None
    assert melanoma.provenance["fitzpatrick_range"] == [5, 6] and wart.provenance["fitzpatrick_range"] == [1, 2]
    assert melanoma.provenance["malignant"] == "True"
    assert not melanoma.is_public and not wart.is_public  # the DDI agreement forbids redistribution
    assert melanoma.source.allows_generative_training is False
    assert "'lipoma': 1" in output
    assert "bad_skin_type: 1" in output and "row 5: skin_tone must be 12, 34 or 56" in output


def test_scin(tmp_path):
    metadata, images, _ = scin(tmp_path)
    output = run_import("scin", metadata, images)
    images_by_id = by_external_id()
    assert sorted(images_by_id) == ["a1.png", "a2.png", "b1.png", "e1.png"]
    a1, a2, b1, e1 = (images_by_id[name] for name in ("a1.png", "a2.png", "b1.png", "e1.png"))
    assert a1.case_id == a2.case_id == "-1000600354148496558"  # read as a string, every digit kept
    assert a1.condition.slug == "eczema"  # top of the weighted differential
    assert a1.provenance["weighted_skin_condition_label"] == {"Eczema": 0.69, "Psoriasis": 0.31}
    assert (a1.fitzpatrick_type, a1.fitzpatrick_label_source) == (4, "dermatologist")  # FST4, FST4, FST5
    assert a1.monk_tone == 6 and a1.body_site == "arm"
    assert (b1.condition.slug, b1.fitzpatrick_type, b1.fitzpatrick_label_source) == ("tinea", 2, "self_reported")
    assert b1.monk_tone == 3  # no US grade: the India grade
    assert (e1.condition.slug, e1.fitzpatrick_type) == ("acne", 3)  # FST3 vs FST5: the lower median
    assert "no_label: 1" in output and "row 4: case -7788996655443322110 has no dermatologist condition label" in output
    assert "'insect bite': 1" in output  # one case with two images counts once
    assert Source.objects.get().allows_generative_training is True


def test_scin_needs_its_labels_file(tmp_path):
    metadata, images, _ = scin(tmp_path)
    metadata.with_name("scin_labels.csv").unlink()
    with pytest.raises(CommandError, match="scin_labels.csv"):
        run_import("scin", metadata, images)
    assert Image.objects.count() == 0 and Source.objects.count() == 0


def test_pad_ufes_20(tmp_path):
    metadata, images, _ = pad_ufes_20(tmp_path)
    output = run_import("pad-ufes-20", metadata, images)
    images_by_id = by_external_id()
    nevus, bcc, scc = (images_by_id[name] for name in ("PAT_1516_1765_530.png", "PAT_46_881_939.png", "PAT_771_1489_690.png"))
    assert (nevus.condition.slug, nevus.fitzpatrick_type, nevus.fitzpatrick_label_source) == ("melanocytic-nevus", 3, "dermatologist")
    assert (bcc.condition.slug, bcc.fitzpatrick_type, bcc.fitzpatrick_label_source) == ("basal-cell-carcinoma", None, "")
    assert (scc.condition.slug, scc.fitzpatrick_type) == ("scc-sccis", 6)
    assert nevus.body_site == "neck" and nevus.case_id == "PAT_1516" and nevus.provenance["lesion_id"] == "1765"
    source = nevus.source
    assert (source.licence, source.allows_generative_training) == ("CC-BY-4.0", True)
    assert "row 5: image 'PAT_9_9_9.png' not found" in output


def test_manifest(tmp_path):
    metadata, images, args = manifest(tmp_path)
    output = run_import("manifest", metadata, images, *args)
    a, b = Image.objects.get(external_id="2024/a.jpg"), Image.objects.get(external_id="2024/b.png")
    assert (a.condition.slug, a.fitzpatrick_type, a.fitzpatrick_label_source) == ("melanoma", 5, "dermatologist")
    assert list(a.regions.values_list("x", "y", "width", "height")) == [(1, 1, 10, 10), (20, 20, 5, 5)]
    assert a.attribution == "Dr A. Example" and a.body_site == "back" and a.licence == "CC-BY-4.0"
    assert (b.condition.slug, b.fitzpatrick_type, b.fitzpatrick_label_source) == ("melanocytic-nevus", 5, "estimated")
    source = a.source
    assert (source.name, source.licence, source.allows_generative_training) == ("Example clinic", "CC-BY-4.0", True)
    assert "region_outside: 1" in output
    assert "row 4: c.jpg: region 1 (60,0 10x10) lies outside the 64x48 image" in output
    assert "'unicorn rash': 1" in output
    assert "row 6: fitzpatrick_label_source must be one of" in output
    assert "row 7: box 1 '1,2,3' is not 'x,y,w,h'" in output
    assert "row 8: image '../outside.jpg' lies outside the images folder" in output
    assert "licence_conflict: 1" in output and "row 9: licence CC-BY-NC-4.0" in output


def test_manifest_needs_a_source_name(tmp_path):
    metadata, images, _ = manifest(tmp_path)
    with pytest.raises(CommandError, match="manifest imports need --source NAME"):
        run_import("manifest", metadata, images, "--licence=CC-BY-4.0")
    assert Source.objects.count() == 0


def test_limit_must_be_positive(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        run_import("ham10000", metadata, images, "--limit=0")


def test_manifest_needs_a_licence_for_a_new_source(tmp_path):
    metadata, images, _ = manifest(tmp_path)
    with pytest.raises(CommandError, match="give its licence with --licence"):
        run_import("manifest", metadata, images, "--source=New clinic")
    assert Source.objects.count() == 0


def test_manifest_reuses_a_source_but_never_changes_its_licence(tmp_path, source):
    metadata, images, _ = manifest(tmp_path)
    run_import("manifest", metadata, images, f"--source={source.name}")
    assert Source.objects.count() == 1 and Image.objects.filter(source=source).count() == 2
    with pytest.raises(CommandError, match="already exists with licence CC-BY-4.0"):
        run_import("manifest", metadata, images, f"--source={source.name}", "--licence=CC0-1.0")


def test_generative_training_flag_is_for_manifests_only(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    with pytest.raises(CommandError, match="follows its licence"):
        run_import("ham10000", metadata, images, "--allow-generative-training")
    assert Source.objects.count() == 0


# --- nothing outside --images is read (symlinks included) -----------------------------------


@pytest.mark.parametrize("link_kind", ["file", "folder"])
def test_a_symlink_out_of_the_images_folder_is_refused(tmp_path, link_kind):
    """A file named like a dataset image, or a folder of them, linked from outside --images."""
    metadata, images, _ = ham10000(tmp_path)
    secret = write_image(tmp_path / "elsewhere", "ISIC_0099999.jpg", 77)
    if link_kind == "file":
        (images / "ISIC_0099999.jpg").symlink_to(secret)
    else:
        (images / "linked").symlink_to(secret.parent, target_is_directory=True)
    output = run_import("ham10000", metadata, images)
    assert "ISIC_0099999" not in by_external_id()
    assert "row 7: image 'ISIC_0099999'" in output
    if link_kind == "file":
        assert "row 7: image 'ISIC_0099999' lies outside the images folder" in output


def test_a_symlink_named_by_exact_path_is_refused(tmp_path):
    metadata, images, _ = manifest(tmp_path)
    secret = write_image(tmp_path / "elsewhere", "secret.jpg", 78)
    (images / "innocent.jpg").symlink_to(secret)
    rows = list(csv.reader(metadata.open()))
    rows.append(["innocent.jpg", "acne", *[""] * (len(rows[0]) - 2)])
    write_csv(metadata, rows[0], rows[1:])
    output = run_import("manifest", metadata, images, "--source=Clinic", "--licence=CC-BY-4.0")
    assert not Image.objects.filter(provenance__row=len(rows)).exists()
    assert f"row {len(rows)}: image 'innocent.jpg' lies outside the images folder" in output


def test_a_symlink_inside_the_images_folder_is_followed(tmp_path):
    metadata, images, _ = ham10000(tmp_path)
    real = write_image(images / "originals", "original.jpg", 79)
    (images / "ISIC_0099999.jpg").symlink_to(real)
    run_import("ham10000", metadata, images)
    assert "ISIC_0099999" in by_external_id()
