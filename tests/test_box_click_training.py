"""Training the box + click network: the shared loop, objects, file round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_medseg import BoxSession, nuclei_2d
from napari_medseg.box_segmentation import load_box_click_network, save_box_click_network
from napari_medseg.evaluation import iou
from napari_medseg.training.box_click import BoxClickObjects, train_box_click


def test_box_click_training_learns_boxes_and_round_trips(tmp_path):
    torch.set_num_threads(2)
    image, labels = nuclei_2d((256, 256), n_nuclei=25, seed=4)[:2]
    objects = BoxClickObjects([([image], [labels], 1.0)])
    history = []
    network = train_box_click(objects, epochs=8, steps_per_epoch=25, batch_size=8,
                              validation=objects, device="cpu", callback=history.append)
    losses = [p.loss for p in history if p.loss is not None]
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    assert all(p.validation_loss is not None for p in history[1:])
    path = save_box_click_network(tmp_path / "net.pt", network, iterations=200)
    loaded = load_box_click_network(path)
    label = int(labels[labels > 0][0])
    ys, xs = np.nonzero(labels == label)
    box = (ys.min() - 2, xs.min() - 2, ys.max() + 3, xs.max() + 3)
    session = BoxSession(image, box, network=loaded)
    assert iou(session.full_mask(), labels == label) > 0.5


def test_box_click_objects_and_files_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no objects"):
        BoxClickObjects([([np.zeros((32, 32))], [np.zeros((32, 32), int)], 1.0)])
    with pytest.raises(ValueError, match="a 2D image and labels of its shape"):
        BoxClickObjects([([np.zeros((32, 32))], [np.zeros((30, 32), int)], 1.0)])
    (tmp_path / "x.pt").write_bytes(b"not a network")
    with pytest.raises(ValueError, match="is not a box \\+ click network"):
        load_box_click_network(tmp_path / "x.pt")
