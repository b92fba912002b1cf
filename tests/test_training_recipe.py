"""In-memory banks, batched augmentation, class weights, recipes and accelerators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgenas.data.augment import AugmentConfig, augment_dense
from edgenas.data.demo import DemoScenes
from edgenas.data.memory import DenseBank, PatchBank, build_bank, epoch_order
from edgenas.errors import UserError
from edgenas.tasks import get_task
from edgenas.training import Budget, TrainConfig, median_frequency_weights, train

TINY = "S2:" + "-".join(["ds_k3_se0_nores_c8_n1"] * 12)


def _sr_data(patch: int = 8, scale: int = 2):
    data = get_task("sr").dataset(None, "train", scale=scale, patch=patch)
    data.images = [im[:50, :62] for im in data.images]  # small whole images
    return data


def test_dense_bank_holds_exactly_the_dataset_samples():
    data = DemoScenes("segmentation", "train", size=(24, 30), length=6)
    bank = build_bank(data)
    assert isinstance(bank, DenseBank) and len(bank) == 6
    assert bank.images.dtype == torch.uint8 and bank.targets.dtype == torch.uint8
    images, targets = bank.batch(torch.tensor([4, 1]))
    for row, index in enumerate((4, 1)):
        image, target = data[index]
        assert torch.equal(images[row], image)  # uint8 storage is lossless for 8-bit images
        assert torch.equal(targets[row], target)
    depth = build_bank(DemoScenes("depth", "train", size=(24, 30), length=3))
    assert depth.targets.dtype == torch.float32
    assert torch.equal(
        depth.batch(torch.tensor([2]))[1][0],
        DemoScenes("depth", "train", size=(24, 30), length=3)[2][1],
    )


def test_patch_bank_patches_are_aligned_crops_of_whole_image_lr_and_hr():
    from edgenas.data.sr import crop_to_scale, make_lr

    data = _sr_data(patch=8, scale=3)
    bank = build_bank(data)
    assert isinstance(bank, PatchBank) and len(bank) == len(data)
    generator = torch.Generator().manual_seed(5)
    indices = torch.arange(len(bank))[:12]
    lr, hr = bank.batch(indices, generator)
    assert lr.shape == (12, 3, 8, 8) and hr.shape == (12, 3, 24, 24)
    # Every LR patch is a crop of the image's whole-image bicubic LR, and its HR patch
    # the crop of the HR image at 3x the position.
    for row in range(12):
        image = data.images[int(indices[row]) // bank.patches_per_image]
        whole_hr = crop_to_scale(image, 3)
        whole_lr = torch.from_numpy(make_lr(whole_hr, 3)).permute(2, 0, 1).float() / 255
        found = [
            (y, x)
            for y in range(whole_lr.shape[1] - 7)
            for x in range(whole_lr.shape[2] - 7)
            if torch.equal(whole_lr[:, y : y + 8, x : x + 8], lr[row])
        ]
        assert found, row
        y, x = found[0]
        hr_crop = torch.from_numpy(whole_hr[y * 3 : y * 3 + 24, x * 3 : x * 3 + 24])
        assert torch.equal(hr_crop.permute(2, 0, 1).float() / 255, hr[row])
    again = bank.batch(indices, torch.Generator().manual_seed(5))
    assert torch.equal(again[0], lr) and torch.equal(again[1], hr)


def test_patch_bank_refuses_images_all_smaller_than_the_patch():
    data = _sr_data(patch=40)
    with pytest.raises(UserError, match="smaller than the LR patch 40x40"):
        build_bank(data)


def test_epoch_order_is_a_seeded_permutation():
    first = epoch_order(50, seed=1, epoch=3)
    assert sorted(first.tolist()) == list(range(50))
    assert torch.equal(first, epoch_order(50, seed=1, epoch=3))
    assert not torch.equal(first, epoch_order(50, seed=1, epoch=4))
    assert not torch.equal(first, epoch_order(50, seed=2, epoch=3))


def test_sr_augmentation_applies_one_dihedral_transform_to_both_images():
    generator = torch.Generator().manual_seed(0)
    lr = torch.rand(32, 3, 6, 6)
    hr = torch.nn.functional.interpolate(lr, scale_factor=2, mode="nearest")
    out_lr, out_hr = augment_dense(lr, hr, "sr", generator, AugmentConfig())
    changed = 0
    for i in range(32):
        # The nearest-upscaled HR stays the nearest upscale of the transformed LR.
        expected = torch.nn.functional.interpolate(
            out_lr[i : i + 1], scale_factor=2, mode="nearest"
        )
        assert torch.equal(out_hr[i : i + 1], expected)
        changed += not torch.equal(out_lr[i], lr[i])
    assert 20 <= changed <= 32  # 7 of the 8 transforms change the patch


def test_window_dropping_is_batched_and_covers_the_configured_area():
    images = torch.rand(200, 3, 40, 50)
    config = AugmentConfig(max_rotation=0.0, flip=0.0, jitter=0.0)
    from edgenas.data.augment import _drop_window

    out = _drop_window(images, torch.Generator().manual_seed(1), config)
    dropped = (out != images).any(dim=1)  # N x H x W
    share = dropped.float().mean(dim=(1, 2))
    hit = share > 0
    assert 70 <= int(hit.sum()) <= 130  # about half the samples (p = 0.5)
    assert float(share[hit].max()) <= 0.12 * 1.3 and float(share[hit].min()) >= 0.02 * 0.5
    again = _drop_window(images, torch.Generator().manual_seed(1), config)
    assert torch.equal(out, again)


def test_median_frequency_weights_match_segnet_definition():
    # Two images of 100 labelled pixels; class 2 appears only in the second.
    counts = torch.tensor([[90, 10, 0], [50, 30, 20]])
    pixels = torch.tensor([100, 100])
    weights = median_frequency_weights(counts, pixels)
    freq = torch.tensor([140 / 200, 40 / 200, 20 / 100])
    median = freq.median()
    assert torch.allclose(weights, (median / freq).float())
    unseen = median_frequency_weights(torch.tensor([[5, 0]]), torch.tensor([5]))
    assert unseen[1] == 0.0


def test_class_weights_switch_on_for_imbalanced_labels_only():
    task = get_task("seg")
    data = DemoScenes("segmentation", "train", size=(24, 30), length=8)
    model = task.build_model(TINY, data.info)
    result = train(model, task, data, None, Budget(steps=1), TrainConfig(batch_size=4))
    assert result.class_weights is not None and len(result.class_weights) == 5
    off = train(
        model, task, data, None, Budget(steps=1), TrainConfig(batch_size=4, class_weights=False)
    )
    assert off.class_weights is None


def test_bank_and_streaming_give_the_same_training():
    task = get_task("seg")
    data = DemoScenes("segmentation", "train", size=(24, 30), length=8)

    def run(in_memory: bool):
        torch.manual_seed(0)
        model = task.build_model(TINY, data.info)
        config = TrainConfig(batch_size=4, seed=2, in_memory=in_memory, class_weights=True)
        result = train(model, task, data, None, Budget(epochs=2), config)
        return model, result

    banked, result_bank = run(True)
    streamed, result_stream = run(False)
    assert result_bank.in_memory and not result_stream.in_memory
    assert result_bank.class_weights == result_stream.class_weights  # all 8 labels counted
    for name, value in banked.state_dict().items():
        assert torch.equal(value, streamed.state_dict()[name]), name


def test_recipes_per_task_and_the_papers():
    from edgenas.tasks.recipes import recipe_config, recipe_input

    sr = recipe_config("sr")
    assert sr.batch_size == 16 and sr.schedule == "cosine" and recipe_input("sr") == (24, 24)
    ldp = recipe_config("seg", "ldp")
    assert (ldp.batch_size, ldp.lr, ldp.schedule) == (256, 7e-4, "ldp")
    assert recipe_config("depth", lr=5e-4, batch_size=None).lr == 5e-4
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_config("sr", "slow")


def test_accelerator_resolution():
    from edgenas.accelerator import resolve_accelerator

    cpu = resolve_accelerator("cpu")
    assert cpu.kind == "cpu" and cpu.precision == "fp32" and cpu.channels_last
    assert not resolve_accelerator("cpu", channels_last=False).channels_last
    assert resolve_accelerator("cpu", "bf16").precision == "bf16"
    with pytest.raises(UserError, match="unknown accelerator"):
        resolve_accelerator("tpu")
    with pytest.raises(UserError, match="fp16 training needs a GPU"):
        resolve_accelerator("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_accelerator("cuda")
        assert resolve_accelerator("auto").kind == "cpu"


def test_mixed_precision_path_trains_under_bf16_autocast():
    # The GPU path (autocast, loss in fp32) exercised on the CPU with bf16.
    task = get_task("seg")
    data = DemoScenes("segmentation", "train", size=(32, 40), length=4)
    torch.manual_seed(0)
    model = task.build_model(TINY, data.info)
    config = TrainConfig(batch_size=4, lr=5e-3, augment=False, precision="bf16", accelerator="cpu")
    first = train(model, task, data, None, Budget(steps=1), config)
    later = train(model, task, data, None, Budget(steps=40), config)
    assert first.accelerator == "cpu bf16 channels-last"
    assert later.final_loss < first.final_loss * 0.8
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights fp32


def test_reference_model_trains_and_its_checkpoint_rebuilds_it(tmp_path):
    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint
    from edgenas.models.reference import build_reference

    task = get_task("sr")
    data = _sr_data(patch=8)
    model = build_reference("espcn", "sr", scale=2)
    result = train(model, task, data, data, Budget(steps=3), TrainConfig(batch_size=4),
                   checkpoint=tmp_path / "c.pt")  # fmt: skip
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["model_spec"] == {"model": "espcn", "task": "sr", "options": model.options}
    rebuilt = model_from_checkpoint(ckpt).eval()
    x = torch.rand(1, 3, 9, 11)
    assert torch.equal(rebuilt(x), model.eval()(x)) and np.isfinite(result.metrics["psnr"])
