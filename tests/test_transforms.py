import torch

from rlselector.data.transforms import BatchTransform, normalize, random_crop, random_hflip


def test_random_crop_matches_a_hand_shift():
    image = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3)
    generator = torch.Generator().manual_seed(0)
    out = random_crop(image, 1, generator)
    # recompute the offsets the crop drew, then build the expected crop by hand from the padded image
    g = torch.Generator().manual_seed(0)
    top, left = int(torch.randint(0, 3, (1,), generator=g)), int(torch.randint(0, 3, (1,), generator=g))
    padded = torch.zeros(5, 5)
    padded[1:4, 1:4] = image[0, 0]
    assert torch.equal(out[0, 0], padded[top : top + 3, left : left + 3])


def test_crop_and_flip_are_seeded():
    images = torch.rand(16, 3, 8, 8)
    a = random_hflip(random_crop(images, 2, torch.Generator().manual_seed(5)), torch.Generator().manual_seed(6))
    b = random_hflip(random_crop(images, 2, torch.Generator().manual_seed(5)), torch.Generator().manual_seed(6))
    assert torch.equal(a, b)


def test_hflip_mirrors_exactly_the_drawn_images():
    images = torch.arange(8 * 2 * 2, dtype=torch.float32).view(8, 1, 2, 2)
    out = random_hflip(images, torch.Generator().manual_seed(1))
    flipped = torch.rand(8, generator=torch.Generator().manual_seed(1)) < 0.5
    for i in range(8):
        expected = images[i].flip(-1) if flipped[i] else images[i]
        assert torch.equal(out[i], expected)
    assert 0 < int(flipped.sum()) < 8


def test_normalize_by_hand():
    x = torch.tensor([[[[0.5]]], [[[1.0]]]])
    assert torch.allclose(normalize(x, (0.5,), (0.25,)), torch.tensor([[[[0.0]]], [[[2.0]]]]))


def test_eval_transform_is_deterministic_uint8_to_normalised():
    t = BatchTransform(mean=(0.0,), std=(1.0,), crop_padding=2, hflip=True)
    images = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert torch.equal(t(images), torch.tensor([[[[0.0, 1.0]]]]))
