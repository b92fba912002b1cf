"""Dataset adapters on tiny folders in the standard layouts, demo data, augmentation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import camvid, grey, nyu, sr_folder, striped_labels, write_png
from PIL import Image

from edgenas.data import detect_format, open_dataset
from edgenas.data.augment import augment_dense
from edgenas.errors import UserError


def _rgb(path: Path, h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _gray(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# ----- segmentation ----------------------------------------------------------------------


def _camvid(root: Path, n: int = 3) -> None:
    for split in ("train", "val"):
        for i in range(n):
            _rgb(root / split / f"f{i}.png", seed=i)
            label = (np.arange(12 * 16).reshape(12, 16) % 12).astype(np.uint8)
            _gray(root / f"{split}annot" / f"f{i}.png", label)


def test_camvid_layout_detected_and_read(tmp_path):
    _camvid(tmp_path)
    assert detect_format("segmentation", tmp_path) == "camvid"
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    assert len(data) == 3 and data.info.ignore_index == 11 and data.info.num_classes == 11
    image, label = data[0]
    assert image.shape == (3, 12, 16) and image.dtype == torch.float32
    assert label.dtype == torch.int64 and int(label.max()) == 11
    resized = open_dataset("segmentation", tmp_path, "train", size=(6, 8))[0]
    assert resized[0].shape == (3, 6, 8)
    assert set(resized[1].unique().tolist()) <= set(range(12))  # ids stay ids


def test_cityscapes_label_ids_map_to_train_ids(tmp_path):
    name = "aachen_000000_000019"
    _rgb(tmp_path / "leftImg8bit" / "val" / "aachen" / f"{name}_leftImg8bit.png", 4, 5)
    ids = np.array([[7, 8, 26, 0, 33]] * 4, dtype=np.uint8)
    _gray(tmp_path / "gtFine" / "val" / "aachen" / f"{name}_gtFine_labelIds.png", ids)
    assert detect_format("segmentation", tmp_path) == "cityscapes"
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    assert data.info.num_classes == 19
    assert data[0][1][0].tolist() == [0, 1, 13, 255, 18]


def test_missing_label_is_one_line_error_naming_the_file(tmp_path):
    _camvid(tmp_path)
    (tmp_path / "valannot" / "f1.png").unlink()
    with pytest.raises(UserError, match=r"no label for .*f1\.png"):
        open_dataset("segmentation", tmp_path, "val")


def test_mismatched_and_unreadable_files_name_the_file(tmp_path):
    _camvid(tmp_path)
    _gray(tmp_path / "valannot" / "f0.png", np.zeros((5, 5), np.uint8))
    (tmp_path / "valannot" / "f1.png").write_bytes(b"not a png")
    data = open_dataset("segmentation", tmp_path, "val")
    with pytest.raises(UserError, match=r"size mismatch: .*f0\.png"):
        data[0]
    with pytest.raises(UserError, match=r"cannot read .*f1\.png"):
        data[1]


def test_unrecognised_layout_says_what_was_expected(tmp_path):
    with pytest.raises(UserError, match="cannot recognise the segmentation layout"):
        open_dataset("segmentation", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        open_dataset("depth", tmp_path / "nope")


# ----- depth -----------------------------------------------------------------------------


def test_nyu_png_millimetres_and_npy_metres(tmp_path):
    for i in range(10):
        _rgb(tmp_path / "rgb" / f"p{i}.png", 6, 8, seed=i)
        mm = np.full((6, 8), 1500 + i, np.uint16)
        mm[0, 0] = 0
        if i == 3:
            np.save(tmp_path / "depth" / f"p{i}.npy", mm.astype(np.float32) / 1000)
        else:
            _gray(tmp_path / "depth" / f"p{i}.png", mm)
    assert detect_format("depth", tmp_path) == "nyu"
    train = open_dataset("depth", tmp_path, "train", size=None)
    val = open_dataset("depth", tmp_path, "val", size=None)
    assert (len(train), len(val)) == (9, 1)  # every 10th pair held out
    _image, depth = train[3]
    assert depth.shape == (1, 6, 8) and depth[0, 0, 0] == 0
    assert float(depth[0, 1, 1]) == pytest.approx(1.503)
    assert float(train[0][1][0, 1, 1]) == pytest.approx(1.5)
    assert train.info.max_depth == 10.0


def test_kitti_depth_selection_layout_divides_by_256_and_uses_garg_crop(tmp_path):
    name = "2011_09_26_drive_0002_sync_{}_0000000005_image_02.png"
    _rgb(tmp_path / "image" / name.format("image"), 6, 8)
    raw = np.zeros((6, 8), np.uint16)
    raw[2:, :] = 256 * 20  # 20 m
    _gray(tmp_path / "groundtruth_depth" / name.format("groundtruth_depth"), raw)
    assert detect_format("depth", tmp_path) == "kitti"
    data = open_dataset("depth", tmp_path, "all", size=None)
    depth = data[0][1]
    assert float(depth.max()) == 20.0 and float(depth[0, 0, 0]) == 0.0
    assert data.info.eval_crop == "garg" and data.info.max_depth == 80.0


def test_depth_resizing_keeps_invalid_pixels_invalid(tmp_path):
    _rgb(tmp_path / "rgb" / "a.png", 10, 10)
    mm = np.where(np.indices((10, 10))[1] % 2 == 0, 0, 2000).astype(np.uint16)
    _gray(tmp_path / "depth" / "a.png", mm)
    depth = open_dataset("depth", tmp_path, "all", size=(5, 7))[0][1]
    assert set(depth.unique().tolist()) <= {0.0, 2.0}


def test_h5_depth_needs_h5py_or_reads_it(tmp_path):
    _rgb(tmp_path / "rgb" / "a.png", 4, 4)
    (tmp_path / "depth").mkdir()
    try:
        import h5py
    except ImportError:
        (tmp_path / "depth" / "a.h5").write_bytes(b"")
        data = open_dataset("depth", tmp_path, "all", size=None)
        with pytest.raises(UserError, match="h5py"):
            data[0]
        return
    with h5py.File(tmp_path / "depth" / "a.h5", "w") as f:
        f["depth"] = np.full((4, 4), 3.0, np.float32)
    assert float(open_dataset("depth", tmp_path, "all", size=None)[0][1].mean()) == 3.0


# ----- super-resolution ------------------------------------------------------------------


def test_sr_folder_eval_crops_hr_to_scale_and_makes_bicubic_lr(tmp_path):
    from edgenas.data.sr import bicubic_resize

    hr = _rgb(tmp_path / "img.png", 31, 26)
    data = open_dataset("sr", tmp_path, "all", scale=3)
    lr, hr_t = data[0]
    assert hr_t.shape == (3, 30, 24) and lr.shape == (3, 10, 8)
    expected = bicubic_resize(hr[:30, :24], (10, 8))
    assert torch.equal(
        (lr * 255).round().byte().permute(1, 2, 0), torch.from_numpy(expected.copy())
    )


def test_sr_training_patches_are_aligned_and_deterministic(tmp_path):
    from edgenas.data.sr import bicubic_resize

    _rgb(tmp_path / "img.png", 64, 64)
    data = open_dataset("sr", tmp_path, "all", scale=2, train=True, patch=8, patches_per_image=4)
    assert len(data) == 4
    lr, hr = data[1]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
    hr8 = (hr * 255).round().byte().permute(1, 2, 0).numpy()
    assert torch.equal(lr, torch.from_numpy(bicubic_resize(hr8, (8, 8))).permute(2, 0, 1) / 255)
    assert torch.equal(data[1][1], hr)
    data.set_epoch(1)
    assert not torch.equal(data[1][1], hr)


def test_div2k_paired_layout(tmp_path):
    for i in (1, 2):
        _rgb(tmp_path / "DIV2K_valid_HR" / f"{i:04d}.png", 16, 20, seed=i)
        _rgb(tmp_path / "DIV2K_valid_LR_bicubic" / "X2" / f"{i:04d}x2.png", 8, 10, seed=10 + i)
    assert detect_format("sr", tmp_path) == "sr-paired"
    data = open_dataset("sr", tmp_path, "val", scale=2)
    lr, hr = data[1]
    assert lr.shape == (3, 8, 10) and hr.shape == (3, 16, 20)
    with pytest.raises(UserError, match="no LR folder for x4"):
        open_dataset("sr", tmp_path, "val", scale=4)


# ----- demo data -------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["depth", "segmentation", "classification"])
def test_demo_scenes_are_deterministic_and_well_formed(task):
    train = open_dataset(task, None, "train")
    again = open_dataset(task, None, "train")
    image, target = train[5]
    assert image.shape == (3, 128, 160) and 0 <= float(image.min()) <= float(image.max()) <= 1
    assert torch.equal(image, again[5][0]) and torch.equal(target, again[5][1])
    assert not torch.equal(image, open_dataset(task, None, "val")[5][0])
    if task == "depth":
        assert target.shape == (1, 128, 160)
        assert float(target.min()) > 1.0 and float(target.max()) <= 10.0
    elif task == "segmentation":
        assert target.shape == (128, 160) and int(target.max()) < train.info.num_classes
        assert len(target.unique()) >= 3


def test_demo_sr_uses_bundled_photographs():
    data = open_dataset("sr", None, "val", scale=2)
    assert len(data) == 2
    lr, hr = data[0]  # chelsea.png, 300x451 -> 300x450 HR
    assert hr.shape == (3, 300, 450) and lr.shape == (3, 150, 225)
    train = open_dataset("sr", None, "train", scale=4)
    assert train[0][0].shape == (3, 48, 48) and train[0][1].shape == (3, 192, 192)


# ----- augmentation ----------------------------------------------------------------------


def test_augmentation_moves_targets_with_images():
    """A labelled image whose colour encodes the class: after augmentation the label
    still matches the colour wherever it is not ignored (away from the blend at edges)."""
    gen = torch.Generator().manual_seed(3)
    labels = torch.zeros(4, 32, 40, dtype=torch.int64)
    labels[:, :, 20:] = 1
    labels[:, 5:15, 3:12] = 2
    images = torch.stack([labels.float() / 2] * 3, 1)
    from edgenas.data.augment import AugmentConfig

    config = AugmentConfig(jitter=0.0, drop_prob=0.0)
    out_img, out_lab = augment_dense(images, labels, "segmentation", gen, config, ignore_index=99)
    assert set(out_lab.unique().tolist()) <= {0, 1, 2, 99}
    ok = out_lab != 99
    err = (out_img[:, 0] * 2 - out_lab.float()).abs()[ok]
    assert float((err < 0.5).float().mean()) > 0.97


def test_depth_augmentation_keeps_invalid_invalid_and_values_unchanged():
    gen = torch.Generator().manual_seed(0)
    depth = torch.full((3, 1, 20, 20), 4.0)
    depth[..., ::3] = 0.0
    _, out = augment_dense(torch.rand(3, 3, 20, 20), depth, "depth", gen)
    assert set(out.unique().tolist()) <= {0.0, 4.0}


def test_sr_augmentation_keeps_lr_hr_relation():
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(4, 3, 16, 16)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    lr2, hr2 = augment_dense(lr, hr, "sr", gen)
    assert torch.allclose(torch.nn.functional.avg_pool2d(hr2, 2), lr2, atol=1e-6)


# ----- the real data folders (skipped without ../shared/data) -----------------------------


def test_real_layouts_are_detected(shared_data):
    assert detect_format("segmentation", shared_data / "camvid") == "camvid"
    assert detect_format("depth", shared_data / "depth") == "nyu"
    assert detect_format("sr", shared_data / "sr" / "T91") == "sr-folder"
    camvid = open_dataset("segmentation", shared_data / "camvid", "val", size=(180, 240))
    assert len(camvid) == 101 and camvid[0][1].shape == (180, 240)
    depth = open_dataset("depth", shared_data / "depth", "val", size=(120, 160))
    _image, target = depth[0]
    assert target.shape == (1, 120, 160) and 0.0 < float((target > 0).float().mean()) < 1.0


def test_sr_training_skips_images_smaller_than_the_patch(tmp_path):
    _rgb(tmp_path / "big.png", 40, 40)
    _rgb(tmp_path / "small.png", 20, 30)
    data = open_dataset("sr", tmp_path, "all", scale=2, train=True, patch=12, patches_per_image=2)
    assert data.skipped == 1 and len(data) == 2
    with pytest.raises(UserError, match="smaller than the HR patch 48x48"):
        open_dataset("sr", tmp_path, "all", scale=2, train=True, patch=24)


# ----- 16-bit files and the whole-set checks (issue 15) -----------------------------------


def test_16bit_rgb_png_reads_as_v_over_65535(tmp_path):
    from edgenas.data.base import read_rgb

    values = np.random.default_rng(0).integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    values[0, 0] = (0, 65535, 32768)
    write_png(tmp_path / "a.png", values)
    pixels = read_rgb(tmp_path / "a.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (12, 16, 3)
    assert np.array_equal(pixels, np.round(values / 257).astype(np.uint8))
    assert pixels[0, 0].tolist() == [0, 255, 128]  # not clipped, not just the high byte
    # Through a dataset: the image tensor is v / 65535 to within half an 8-bit step.
    write_png(tmp_path / "sr" / "a.png", values)
    _lr, hr = open_dataset("sr", tmp_path / "sr", "all", scale=2)[0]
    expected = torch.from_numpy(values.astype(np.float32) / 65535).permute(2, 0, 1)
    assert float((hr - expected).abs().max()) <= 0.5 / 255 + 1e-6


def test_16bit_grey_and_rgba_pngs_are_not_clipped_to_white(tmp_path):
    from edgenas.data.base import read_rgb

    grey = np.array([[0, 1000, 30000, 65535]], np.uint16)
    write_png(tmp_path / "grey.png", grey)
    assert read_rgb(tmp_path / "grey.png")[0, :, 0].tolist() == [0, 4, 117, 255]
    rgba = np.concatenate([np.stack([grey] * 3, axis=2), np.full((1, 4, 1), 9, np.uint16)], 2)
    write_png(tmp_path / "rgba.png", rgba)
    assert read_rgb(tmp_path / "rgba.png")[0, :, 1].tolist() == [0, 4, 117, 255]


def test_16bit_labels_are_class_ids(tmp_path):
    wide = (np.arange(32 * 32).reshape(32, 32) % 12).astype(np.uint16)
    camvid(tmp_path, labels=lambda split, i: wide)
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    data.check_files()
    assert torch.equal(data[0][1], torch.from_numpy(wide.astype(np.int64)))


def test_16bit_cityscapes_label_ids_map_and_ids_above_255_are_refused(tmp_path):
    name = "aachen_000000_000019"
    _rgb(tmp_path / "leftImg8bit" / "val" / "aachen" / f"{name}_leftImg8bit.png", 1, 4)
    label = tmp_path / "gtFine" / "val" / "aachen" / f"{name}_gtFine_labelIds.png"
    write_png(label, np.array([[7, 26, 0, 200]], np.uint16))
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    assert data[0][1][0].tolist() == [0, 13, 255, 255]
    write_png(label, np.array([[7, 26, 0, 300]], np.uint16))
    with pytest.raises(UserError, match=r"label 300 in .*labelIds\.png is outside .*0-255"):
        data.check_files()
    with pytest.raises(UserError, match="label 300"):
        data[0]  # the same check guards every sample read


def test_labels_outside_the_classes_name_the_first_file_and_value(tmp_path):
    def labels(split, i):
        label = striped_labels()
        if split == "val" and i == 2:
            label[5, 5] = 200
        return label

    camvid(tmp_path, labels=labels)
    train = open_dataset("segmentation", tmp_path, "train")
    train.check_files()  # the bad file is in val only
    val = open_dataset("segmentation", tmp_path, "val")
    with pytest.raises(UserError, match=r"label 200 in .*valannot/f2\.png is outside .*0-10"):
        val.check_files()


def test_camvid_255_is_unlabelled_like_11(tmp_path):
    camvid(tmp_path, labels=lambda split, i: np.array([[3, 255, 11, 0] * 8] * 32, np.uint8))
    for split in ("train", "val"):
        open_dataset("segmentation", tmp_path, split).check_files()  # no error
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    assert data[0][1][0, :4].tolist() == [3, 11, 11, 0]


def test_a_split_without_one_labelled_pixel_is_refused(tmp_path):
    camvid(tmp_path, labels=lambda split, i: np.full((32, 32), 11 if split == "val" else 3))
    with pytest.raises(UserError, match=r"every label pixel of the val split .* is 11"):
        open_dataset("segmentation", tmp_path, "val").check_files()


def test_a_file_changed_after_a_check_is_checked_again(tmp_path):
    camvid(tmp_path)
    data = open_dataset("segmentation", tmp_path, "train")
    data.check_files()
    bad = striped_labels()
    bad[0, 0] = 99
    grey(tmp_path / "trainannot" / "f1.png", bad)
    os.utime(tmp_path / "trainannot" / "f1.png", ns=(1, 1))  # a new modification time
    with pytest.raises(UserError, match=r"label 99 in .*f1\.png"):
        open_dataset("segmentation", tmp_path, "train").check_files()


def test_8bit_depth_png_is_refused_naming_the_file_and_the_format(tmp_path):
    nyu(tmp_path, depth_mm=lambda i: np.full((32, 32), 120, np.uint8))
    data = open_dataset("depth", tmp_path, "train")
    with pytest.raises(UserError, match=r"depth PNG .*d0\.png is 8-bit; .*16-bit in millimetres"):
        data.check_files()
    with pytest.raises(UserError, match="8-bit"):
        data[0]


def test_depth_maps_without_a_valid_pixel_are_counted_and_named(tmp_path):
    nyu(tmp_path, depth_mm=lambda i: np.zeros((32, 32), np.uint16) if i in (1, 2) else None)
    for i in (0, 3):
        (tmp_path / "depth" / f"d{i}.png").unlink()
        np.save(tmp_path / "depth" / f"d{i}.npy", np.full((32, 32), 2500.0, np.float32))  # mm
    with pytest.raises(UserError, match=r"4 of the 4 depth maps .* no valid pixel .* first .*d0"):
        open_dataset("depth", tmp_path, "all").check_files()


def test_partly_valid_depth_is_accepted_and_scored(tmp_path):
    from edgenas.metrics import DepthMeter

    def half_valid(i):
        depth = np.full((32, 32), 2000, np.uint16)
        depth[:, : 8 * i] = 0  # 0 to 3 quarters invalid
        return depth

    nyu(tmp_path, depth_mm=half_valid)
    data = open_dataset("depth", tmp_path, "all", size=None)
    data.check_files()
    meter = DepthMeter()
    targets = torch.stack([data[i][1] for i in range(len(data))] + [torch.zeros(1, 32, 32)])
    meter.update(torch.full_like(targets, 2.0), targets)
    metrics = meter.compute()
    assert meter.count == 4  # the all-invalid target is skipped, not averaged in as NaN
    assert metrics["rel"] == 0.0 and metrics["delta1"] == 1.0


def test_sr_images_too_small_to_score_and_lr_larger_than_hr_are_refused(tmp_path):
    sr_folder(tmp_path / "small", size=18)
    with pytest.raises(UserError, match=r"too small to score at x4: .* 19x19"):
        open_dataset("sr", tmp_path / "small", "all", scale=4).check_files()
    open_dataset("sr", tmp_path / "small", "all", scale=2).check_files()  # 18 >= 2*2+11
    for i in range(2):
        _rgb(tmp_path / "paired" / "HR" / f"p{i}.png", 32, 32, seed=i)
        _rgb(tmp_path / "paired" / "LR" / f"p{i}.png", 24, 24, seed=i)
    with pytest.raises(UserError, match=r"LR .*p0\.png \(24x24\) x2 is larger than HR"):
        open_dataset("sr", tmp_path / "paired", "all", scale=2).check_files()


def test_corrupt_and_32bit_images_are_found_by_the_check(tmp_path):
    camvid(tmp_path)
    whole = (tmp_path / "train" / "f1.png").read_bytes()
    (tmp_path / "train" / "f1.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match=r"cannot read image .*train/f1\.png"):
        open_dataset("segmentation", tmp_path, "train").check_files()
    Image.fromarray(np.zeros((32, 32), np.float32)).save(tmp_path / "float.tif")
    from edgenas.data.base import image_size, read_rgb

    for read in (image_size, read_rgb):
        with pytest.raises(UserError, match=r"float.tif is 32-bit float"):
            read(tmp_path / "float.tif")


def test_a_grey_image_in_an_rgb_set_is_read_as_rgb(tmp_path):
    camvid(tmp_path)
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(tmp_path / "train" / "f0.png")
    data = open_dataset("segmentation", tmp_path, "train", size=None)
    data.check_files()
    assert torch.allclose(data[0][0], torch.full((3, 32, 32), 90 / 255))


def test_data_folder_and_format_checks_say_what_is_wrong(tmp_path):
    from edgenas.data.open import check_folder, check_format

    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_folder("--data", tmp_path / "file")
    with pytest.raises(UserError, match="does not exist"):
        check_folder("--data", tmp_path / "nope")
    with pytest.raises(UserError, match="--format nyu is a depth layout; segmentation data takes"):
        check_format("segmentation", "nyu")
    with pytest.raises(UserError, match="unknown --format 'bogus'"):
        open_dataset("sr", None, "val", fmt="bogus")  # even for the built-in data
    check_format("segmentation", "cityscapes")
    check_format("depth", None)


def test_sample_predictions_of_a_val_set_with_mixed_sizes(tmp_path):
    from edgenas.visualize import sample_predictions

    camvid(tmp_path)
    _rgb(tmp_path / "val" / "f1.png", 40, 48)
    grey(tmp_path / "valannot" / "f1.png", striped_labels(40, 48))
    data = open_dataset("segmentation", tmp_path, "val", size=None)
    images, preds, targets = sample_predictions(
        torch.nn.Conv2d(3, 11, 1), data, input_size=(32, 32)
    )
    assert images.shape == (2, 3, 32, 32)  # the 40x48 one is left out, not a stack error
    assert preds.shape[-2:] == targets.shape[-2:] == (32, 32)
