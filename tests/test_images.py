"""The image input kind (issue 22): class folders or a manifest of PNG files, drawn here with PIL, through
preprocessing, the CNN, the model server and `regula predict`."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from helpers import REGION, REPO, regula, run_folders, run_script, run_training, serving
from image_data import SHAPES, class_folders, manifest, shape_image
from PIL import Image

from pipelines.local.engine.s3 import ensure_bucket
from pipelines.local.run import run_local
from pipelines.settings import Settings
from steps import inputs, serving_code
from steps.contract import read_schema


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def preprocess(data, out, *args):
    return run_script("preprocess.py", "--input", str(data), "--output-dir", str(out), *args,
                      env={"REGULA_METRICS": "off"})  # fmt: skip


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """A CNN trained for a few epochs on 16x16 grayscale shapes: the artifact's folder (code/, weights, schema)."""
    root = tmp_path_factory.mktemp("image-model")
    class_folders(root / "shapes", per_class=20)
    result = preprocess(root / "shapes", root / "splits")
    assert result.returncode == 0, result.stderr
    result = run_training(root / "splits", root / "model", "--max_epochs", "5")
    assert result.returncode == 0, result.stderr
    assert "train: model: Regula's CNN" in result.stdout
    return root / "model"


# -- preprocessing: every bad file named in one report, nothing written ------------------------------------------


def test_every_bad_image_is_named_in_one_error_and_nothing_is_written(tmp_path):
    data = class_folders(tmp_path / "data", per_class=12)
    rng = np.random.default_rng(1)
    (data / "circle" / "empty.png").write_bytes(b"")
    (data / "circle" / "notes.png").write_text("these are my notes, not a picture")
    whole = png(shape_image("square", rng))
    (data / "square" / "cut.png").write_bytes(whole[: len(whole) // 2])
    shape_image("square", rng, mode="RGB").save(data / "square" / "colour.png")
    shape_image("triangle", rng).save(data / "triangle" / "fake.png", format="GIF")
    (data / "triangle" / "anim.gif").write_bytes((data / "triangle" / "fake.png").read_bytes())
    Image.fromarray(np.zeros((16, 16), dtype=np.uint16)).save(data / "triangle" / "deep.png")
    Image.new("L", (6000, 5000)).save(data / "triangle" / "bomb.png")  # 30 megapixels in a small file
    (data / "triangle" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (data / "star").mkdir()
    for i in range(2):
        shape_image("circle", rng).save(data / "star" / f"{i}.png")
    shape_image("circle", rng).save(data / "stray.png")

    result = preprocess(data, tmp_path / "out")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR preprocess: "), result.stderr
    message = lines[0]
    for expected in (
        "circle/empty.png: the file is empty (0 bytes)",
        "circle/notes.png: not an image in a format this reads (PNG, JPEG, WEBP, BMP)",
        "square/cut.png: the image data cannot be decoded",
        "mixed channels: 39 grayscale (1 channel), 1 colour (3 channels) images; convert them to one mode "
        "(the 1 colour (3 channels): square/colour.png)",
        "triangle/fake.png: not an image in a format this reads",
        "triangle/anim.gif: not an image file (expected .png, .jpg, .jpeg, .webp, .bmp)",
        "triangle/deep.png: mode I;16 is not read",
        "triangle/bomb.png: the image claims 6000x5000 = 30,000,000 pixels, over the limit of 25,000,000",
        "triangle/gone.png: cannot be read (No such file or directory)",
        "too few images to split: 1 classes have fewer than the 5 images a stratified train/validation/test split "
        "needs: 'star' (2 images)",
        "stray.png: a file outside any class folder",
    ):
        assert expected in message, (expected, message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.npy"))


def test_the_normalization_is_fitted_on_the_training_split_only(tmp_path):
    """Each image a flat grey of its own value: which source images went to training is read off the split file, and
    the schema's mean and std are those of these source images, not of all of them."""
    values = {shape: list(range(10 + 80 * k, 10 + 80 * k + 40, 2)) for k, shape in enumerate(SHAPES)}  # 20 each
    for shape, levels in values.items():
        (tmp_path / "data" / shape).mkdir(parents=True)
        for level in levels:
            Image.new("L", (12, 12), color=level).save(tmp_path / "data" / shape / f"{level}.png")
    result = preprocess(tmp_path / "data", tmp_path / "out", "--image-size", "8")
    assert result.returncode == 0, result.stderr
    schema = read_schema(tmp_path / "out" / "train")
    assert (schema["kind"], schema["image"]["size"], schema["image"]["channels"]) == ("image", 8, 1)
    assert schema["classes"] == sorted(SHAPES)

    train = np.load(tmp_path / "out" / "train" / "images.npy")
    assert train.shape == (36, 1, 8, 8) and train.dtype == np.uint8
    in_train = sorted(int(image[0, 0, 0]) for image in train)
    every = sorted(v for levels in values.values() for v in levels)
    assert set(in_train) < set(every) and len(in_train) == 36
    mean, std = np.mean(np.array(in_train) / 255), np.std(np.array(in_train) / 255)
    assert schema["image"]["mean"][0] == pytest.approx(mean, abs=1e-9)
    assert schema["image"]["std"][0] == pytest.approx(std, abs=1e-9)
    assert abs(np.mean(np.array(every) / 255) - mean) > 1e-4  # all images would give another mean

    # the split's inputs are normalized with those statistics as batches are taken
    features, labels = inputs.read(tmp_path / "out" / "validation", "validation", schema)
    assert features.model_shape() == {"n_features": 64, "extra": {"input_shape": [1, 8, 8], "augmentation": "none"}}
    pixels = np.load(tmp_path / "out" / "validation" / "images.npy")
    assert np.allclose(features[:].numpy(), (pixels / 255 - mean) / std, atol=1e-5)
    assert len(labels) == len(pixels) == 12


def test_a_manifest_names_images_by_relative_path_or_s3_uri_under_the_input_and_nothing_else(tmp_path):
    csv = manifest(tmp_path / "data", per_class=10)
    lines = csv.read_text().splitlines()
    # half the rows as S3 URIs under InputDataUri: the objects SageMaker downloaded beside the manifest
    rows = [lines[0]] + [
        f"s3://team-bucket/shots/{line}" if i % 2 else line for i, line in enumerate(lines[1:])
    ]  # fmt: skip
    csv.write_text("\n".join(rows) + "\n")
    args = ("--image-column", "path", "--target", "label", "--input-uri", "s3://team-bucket/shots")
    result = preprocess(tmp_path / "data", tmp_path / "out", *args)
    assert result.returncode == 0, result.stderr
    assert "preprocess: 30 images (labels.csv), 3 classes" in result.stdout

    (tmp_path / "secret.png").write_bytes(png(shape_image("circle", np.random.default_rng(0))))
    csv.write_text("\n".join([*rows, "../secret.png,circle", "s3://other-bucket/x.png,circle", "/etc/passwd,square",
                              "pictures/missing.png,square", ",circle"]) + "\n")  # fmt: skip
    result = preprocess(tmp_path / "data", tmp_path / "out2", *args)
    assert result.returncode == 2
    message = result.stderr.strip()
    for expected in (
        "labels.csv row 31: '../secret.png' leaves the input folder",
        "labels.csv row 32: s3://other-bucket/x.png is in another bucket than InputDataUri (s3://team-bucket/shots): "
        "images are read from its bucket only",
        "labels.csv row 33: '/etc/passwd' is neither a relative path nor an S3 URI",
        "labels.csv row 34: 'pictures/missing.png' does not exist",
        "labels.csv row 35: no image path in 'path'",
    ):
        assert expected in message, (expected, message)
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").rglob("*.npy"))


def test_a_manifests_s3_uris_elsewhere_in_the_bucket_are_fetched_and_unsafe_ones_refused(tmp_path, clients):
    """Each image a flat grey of its own level: the levels of the images fetched from the moto server over HTTP are
    read back from the split files."""
    s3 = clients["s3"]
    s3.create_bucket(Bucket="team-bucket")
    (tmp_path / "data" / "pictures").mkdir(parents=True)
    lines, fetched = ["path,label"], set()
    for k, shape in enumerate(SHAPES):
        for i in range(10):
            level = 10 + 80 * k + 2 * i
            image = png(Image.new("L", (12, 12), color=level))
            if i % 2:  # in the bucket, outside InputDataUri's prefix: only the manifest names them
                s3.put_object(Bucket="team-bucket", Key=f"archive/{shape}/{i}.png", Body=image)
                lines.append(f"s3://team-bucket/archive/{shape}/{i}.png,{shape}")
                fetched.add(level)
            else:
                (tmp_path / "data" / "pictures" / f"{shape}{i}.png").write_bytes(image)
                lines.append(f"pictures/{shape}{i}.png,{shape}")
    (tmp_path / "data" / "labels.csv").write_text("\n".join(lines) + "\n")
    args = ("--image-column", "path", "--target", "label", "--input-uri", "s3://team-bucket/shots/",
            "--image-size", "8")  # fmt: skip
    result = preprocess(tmp_path / "data", tmp_path / "job" / "out", *args)
    assert result.returncode == 0, result.stderr
    assert "preprocess: fetching 15 images outside InputDataUri from s3://team-bucket" in result.stdout
    assert "preprocess: 30 images (labels.csv), 3 classes" in result.stdout
    levels = {int(p[0, 0, 0]) for split in ("train", "validation", "test")
              for p in np.load(tmp_path / "job" / "out" / split / "images.npy")}  # fmt: skip
    assert fetched < levels and len(levels) == 30
    assert [p.name for p in (tmp_path / "job").iterdir()] == ["out"]  # the fetched copies are gone

    s3.put_object(Bucket="team-bucket", Key="archive/notes.png", Body=b"my notes, not a picture")
    bad = ["s3://team-bucket/archive/missing.png", "s3://team-bucket/archive/../shots/x.png",
           "s3://other-bucket/archive/x.png", "s3://team-bucket/archive//x.png", "s3://team-bucket/archive/a.txt",
           "s3://team-bucket/archive/notes.png", "s3://team-bucket/shots/../archive/x.png"]  # fmt: skip
    (tmp_path / "data" / "labels.csv").write_text("\n".join([*lines, *(f"{u},circle" for u in bad)]) + "\n")
    result = preprocess(tmp_path / "data", tmp_path / "job2" / "out", *args)
    assert result.returncode == 2, result.stdout
    message = result.stderr.strip()
    for expected in (
        "labels.csv row 31: s3://team-bucket/archive/missing.png does not exist",
        "labels.csv row 32: 's3://team-bucket/archive/../shots/x.png': the key has an empty, '.' or '..' segment",
        "labels.csv row 33: s3://other-bucket/archive/x.png is in another bucket than InputDataUri "
        "(s3://team-bucket/shots/): images are read from its bucket only",
        "labels.csv row 34: 's3://team-bucket/archive//x.png': the key has an empty, '.' or '..' segment",
        "labels.csv row 35: s3://team-bucket/archive/a.txt: not an image file",
        "s3://team-bucket/archive/notes.png: not an image in a format this reads (PNG, JPEG, WEBP, BMP)",
        "labels.csv row 37: 's3://team-bucket/shots/../archive/x.png': the key has a '..' segment",
    ):
        assert expected in message, (expected, message)
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "job2").rglob("*.npy")) and not list((tmp_path / "job2").glob("regula-fetched-*"))


def test_image_parameters_are_checked_before_any_image_is_read(tmp_path):
    result = preprocess(tmp_path / "nowhere", tmp_path / "out", "--image-size", "3", "--image-augmentation", "rotate")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR preprocess: 2 problems: (1) ImageSize must be a whole number 0 (from the images) or between 8 and 512, "
        "got 3; (2) ImageAugmentation must be one of none, flip, crop, flip,crop, got 'rotate'"
    )


# -- serving ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(image_model):
    with serving(image_model) as url:  # the artifact's code/serve.py, one worker
        yield url


def post(url: str, body: bytes, content_type: str):
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_server_scores_image_bodies_and_base64_batches_alike(server, image_model):
    rng = np.random.default_rng(7)
    images = [png(shape_image(shape, rng)) for shape in SHAPES]
    singles = []
    for content_type, body in zip(("image/png", "application/x-image", "image/jpeg"), images, strict=True):
        status, answer = post(server, body, content_type)  # a PNG sent as image/jpeg is read by what it is
        assert status == 200, answer
        assert answer["classes"] == sorted(SHAPES) and len(answer["predictions"]) == 1
        singles.append(answer["probabilities"][0])
    batch = json.dumps({"instances": [{"image": base64.b64encode(b).decode()} for b in images]}).encode()
    status, answer = post(server, batch, "application/json")
    assert status == 200, answer
    assert np.allclose(answer["probabilities"], singles, atol=1e-6)

    inference = serving_code.import_inference(image_model / "code")
    expected = inference.model_fn(str(image_model)).predict(inference.read_rows(images[0], "image/png"))
    assert np.allclose(expected["probabilities"][0], singles[0], atol=1e-6)


def test_a_decompression_bomb_is_refused_by_the_server_before_it_is_decoded(server):
    out = io.BytesIO()
    Image.new("L", (20_000, 20_000)).save(out, format="PNG", optimize=True)  # 400 megapixels, a few hundred KB
    bomb = out.getvalue()
    assert len(bomb) < 1_000_000
    status, answer = post(server, bomb, "image/png")
    assert status == 400
    assert answer["error"] == "image 1 of 1: the image claims more than twice the limit of 25,000,000 pixels"
    out = io.BytesIO()
    Image.new("L", (6000, 5000)).save(out, format="PNG")  # over the limit, under Pillow's own guard
    status, answer = post(server, out.getvalue(), "image/png")
    assert (status, answer["error"]) == (
        400,
        "image 1 of 1: the image claims 6000x5000 = 30,000,000 pixels, over the limit of 25,000,000",
    )
    # the server is still up and scores the next image
    status, _ = post(server, png(shape_image("circle", np.random.default_rng(0))), "image/png")
    assert status == 200


def test_a_batch_is_bounded_in_images_and_in_pixels_before_any_image_is_decoded(server):
    small = base64.b64encode(png(shape_image("circle", np.random.default_rng(5)))).decode()
    many = json.dumps({"instances": [{"image": small}] * 1025}).encode()
    status, answer = post(server, many, "application/json")
    assert (status, answer["error"]) == (
        400,
        "the request holds 1,025 images; a request may hold at most 1,024 (the limit per request): send them in "
        "several requests",
    )
    status, answer = post(server, json.dumps({"instances": [{"image": small}] * 1024}).encode(), "application/json")
    assert status == 200 and len(answer["predictions"]) == 1024, answer

    out = io.BytesIO()
    Image.new("L", (5000, 4000)).save(out, format="PNG")  # 20 megapixels each: under the per-image limit
    large = base64.b64encode(out.getvalue()).decode()
    assert len(large) < 200_000
    body = json.dumps({"instances": [{"image": small}, {"image": large}, {"image": large}, {"image": large}]})
    status, answer = post(server, body.encode(), "application/json")
    assert (status, answer["error"]) == (
        400,
        "the request's images claim over 50,000,000 pixels in all (the limit per request; 60,000,256 by image 4 of "
        "4): send fewer or smaller images per request",
    )
    # a refused batch is refused whole, and the server goes on scoring
    status, _ = post(server, png(shape_image("square", np.random.default_rng(6))), "image/png")
    assert status == 200


def test_undecodable_and_wrong_mode_images_are_client_errors(server):
    rng = np.random.default_rng(3)
    colour = png(shape_image("circle", rng, mode="RGB"))
    whole = png(shape_image("circle", rng))
    cases = [
        (b"GIF89a not really", "image/png", "image 1 of 1: not an image in a format this reads"),
        (whole[:60], "image/png", "image 1 of 1: the image data cannot be decoded"),
        (colour, "image/png", "image 1 of 1: the image is RGB, colour (3 channels); expected grayscale (1 channel)"),
        (b"", "application/x-image", "image 1 of 1: the file is empty (0 bytes)"),
        (b'{"instances": [{"image": "not base64!"}]}', "application/json", 'image 1: "image" is not valid base64'),
        (b"a,b\n1,2\n", "text/csv", "this model scores images: send one as application/x-image"),
    ]
    for body, content_type, expected in cases:
        status, answer = post(server, body, content_type)
        assert status == 400 and answer["error"].startswith(expected), (expected, answer)


# -- end to end: the local runner, the registry, `regula predict` on PNG files ---------------------------------


def model_packages(sagemaker):
    return sagemaker.list_model_packages(ModelPackageGroupName="regula-models")["ModelPackageSummaryList"]


def fresh_pngs(folder, per_class=8, seed=99):
    """New images (another seed) named by their shape: what the team scores after training."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for shape in SHAPES:
        for i in range(per_class):
            shape_image(shape, rng).save(folder / f"{shape}-{i}.png")
    return folder


def scored_accuracy(result) -> float:
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "file,prediction,probability_circle,probability_square,probability_triangle", lines[0]
    rows = [line.split(",") for line in lines[1:]]
    return np.mean([row[0].split("-")[0] == row[1] for row in rows]), len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["class folders", "manifest", "manifest of S3 images"])
def test_images_run_end_to_end_to_a_registered_model_that_regula_predict_scores(layout, tmp_path, clients):
    params = {}
    if layout == "class folders":
        data = class_folders(tmp_path / "data", per_class=30)
    else:
        csv = manifest(tmp_path / "data", per_class=30)
        data, params = csv.parent, {"ImageColumn": "path"}
    if layout == "manifest of S3 images":  # in the artifacts bucket, outside the prefix the run uploads the data to
        s3 = clients["s3"]
        ensure_bucket(s3, Settings().bucket, REGION)
        lines = csv.read_text().splitlines()
        for line in lines[1:]:
            path = data / line.split(",")[0]
            s3.upload_file(str(path), Settings().bucket, f"team-archive/{path.name}")
            path.unlink()
        rows = [f"s3://{Settings().bucket}/team-archive/{line.split('/', 1)[1]}" for line in lines[1:]]
        csv.write_text("\n".join([lines[0], *rows]) + "\n")
    lines = []
    report = run_local(Settings(), data=data, target="label" if params else None, params=params,
                       runs_dir=tmp_path / "runs", echo=lines.append)  # fmt: skip
    output = "\n".join(lines)
    assert report["status"] == "Succeeded" and report["decision"] == "registered", output
    assert "preprocess: 90 images" in output and "train: model: Regula's CNN" in output
    if layout == "manifest of S3 images":
        assert f"preprocess: fetching 90 images outside InputDataUri from s3://{Settings().bucket}" in output
    (package,) = model_packages(clients["sagemaker"])
    assert package["ModelPackageArn"] == report["model_package_arn"]
    best = [r for r in report["rounds"] if r["round"] == report["rounds"][-1]["selected_round"]][0]
    assert best["test_metrics"]["accuracy"] >= 0.8

    run_dir = run_folders(tmp_path / "runs")[0]
    evaluation = json.loads(next(run_dir.rglob("evaluation.json")).read_text())
    assert evaluation["served_rows_checked"] == 18  # the raw test images, scored through the serving code

    images = fresh_pngs(tmp_path / "new")
    result = regula("predict", "--model", str(run_dir), "--data", str(images), cwd=REPO)
    assert result.returncode == 0, result.stderr
    accuracy, rows = scored_accuracy(result)
    assert rows == 24 and accuracy >= 0.8
    one = regula("predict", "--model", str(run_dir), "--data", str(images / "circle-0.png"), cwd=REPO)
    assert one.returncode == 0 and one.stdout.splitlines()[1].startswith("circle-0.png,"), one.stderr


@pytest.mark.slow
def test_bad_images_fail_the_run_at_preprocess_and_nothing_is_trained(tmp_path, clients):
    data = class_folders(tmp_path / "data", per_class=10)
    (data / "circle" / "empty.png").write_bytes(b"")
    (data / "square" / "notes.png").write_text("not a picture")
    result = regula("run", "--local", "--data", str(data), "--runs-dir", str(tmp_path / "runs"), timeout=300)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED at")]
    assert len(failures) == 1
    assert failures[0].startswith(
        "FAILED at Preprocess: preprocess: 2 problems: (1) circle/empty.png: the file is empty (0 bytes); "
        "(2) square/notes.png: not an image in a format this reads (PNG, JPEG, WEBP, BMP) (exit code 2"
    ), failures[0]
    assert "TrainRound1" not in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert model_packages(clients["sagemaker"]) == []


# -- the seed's story: what a retrain changed, and what it did to the gap --------------------------------------------


def evaluation(round_: int, decision: str, dropout: float, gap: float, l1=1e-5, l2=0.01) -> dict:
    """A round's evaluation.json, as steps/evaluate.py writes it, with the fields the run report reads."""
    return {
        "round": round_, "problem_type": "classification", "decision": decision, "reason": f"round {round_}",
        "regularization": {"dropout": dropout, "l1": l1, "l2": l2},
        "generalization_gap": {"relative": gap, "standard_error": 0.01, "loss": gap / 2},
        "quality": {"metric": "balanced_accuracy", "validation": 0.9, "baseline": 0.33, "test": 0.88},
        "metrics": {"train": {"balanced_accuracy": 1.0}, "test": {"balanced_accuracy": 0.88}},
        "epochs": 30, "best_epoch": 20, "selected": {"round": round_},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        (
            [evaluation(1, "overfit", 0.2, 0.3125), evaluation(2, "register", 0.35, 0.0841, 1e-4, 0.05)],
            ["round 1 overfit: dropout 0.20 -> 0.35, L1 1.0e-05 -> 1.0e-04, L2 1.0e-02 -> 5.0e-02, gap 0.312 -> "
             "0.084 in round 2"],
        ),
        (
            [evaluation(1, "overfit", 0.2, 0.12), evaluation(2, "collapsed", 0.3, 0.11),
             evaluation(3, "register", 0.25, 0.05)],
            ["round 1 overfit: dropout 0.20 -> 0.30, L1 1.0e-05 -> 1.0e-05, L2 1.0e-02 -> 1.0e-02, gap 0.120 -> "
             "0.110 in round 2",
             "round 2 collapsed: dropout 0.30 -> 0.25, L1 1.0e-05 -> 1.0e-05, L2 1.0e-02 -> 1.0e-02, gap 0.110 -> "
             "0.050 in round 3"],
        ),
        ([evaluation(1, "register", 0.2, 0.02)], []),
    ],
)  # fmt: skip
def test_the_run_summary_says_what_each_retrain_changed_and_the_gap_before_and_after(rounds, expected, tmp_path):
    from pipelines.local import layout as run_layout
    from pipelines.local.engine.runner import Execution
    from pipelines.local.report import build_report, summary_lines

    for e in rounds:
        path = run_layout.round_evaluation(tmp_path, e["round"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(e))
    execution = Execution("regula", "x1", "arn:x1", {"MaxGap": 0.1}, tmp_path, status="Succeeded")
    report = build_report(execution)
    assert report["regularization_story"] == expected
    lines = summary_lines(report)
    assert [line for line in lines if line.startswith("round ") and " -> " in line] == expected
