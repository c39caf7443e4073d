"""The contact proxy: contact areas and centres, block-invariant, above an area threshold."""

from __future__ import annotations

import numpy as np

from axonseg.connectome import combine_contacts, contact_faces, contacts_to_synapses

VOXEL = (30.0, 8.0, 8.0)


def two_boxes() -> np.ndarray:
    labels = np.zeros((6, 10, 12), np.uint64)
    labels[:, :, :6] = 1
    labels[:4, :, 6:] = 2  # touches segment 1 over 4 x 10 voxel faces (z, y) at x = 6
    labels[4:, 2:5, 6:] = 3  # touches 1 over 2 x 3 faces, and 2 over 3 x 6 faces in z
    return labels


def test_contact_area_and_centre():
    contacts = contact_faces(two_boxes(), VOXEL, (0.0, 0.0, 0.0)).set_index(["seg_a", "seg_b"])
    assert contacts.loc[(1, 2), "area_nm2"] == 4 * 10 * 30 * 8
    assert contacts.loc[(1, 3), "area_nm2"] == 2 * 3 * 30 * 8
    assert contacts.loc[(2, 3), "area_nm2"] == 3 * 6 * 8 * 8
    area = contacts.loc[(1, 2), "area_nm2"]
    centre = contacts.loc[(1, 2), ["sum_z", "sum_y", "sum_x"]].to_numpy() / area
    np.testing.assert_allclose(centre, [60.0, 40.0, 48.0])  # z: 4 sections of 30 nm, x: the face at 6 * 8 nm


def test_blockwise_contacts_equal_the_whole_volume():
    labels = two_boxes()
    whole = contact_faces(labels, VOXEL, (0.0, 0.0, 0.0))
    parts = []
    block = (3, 4, 5)
    for z in range(0, 6, 3):
        for y in range(0, 10, 4):
            for x in range(0, 12, 5):
                read = labels[z:z + 4, y:y + 5, x:x + 6]  # one extra voxel on the far sides
                owned = (min(3, 6 - z), min(4, 10 - y), min(5, 12 - x))
                offset = (z * VOXEL[0], y * VOXEL[1], x * VOXEL[2])
                parts.append(contact_faces(read, VOXEL, offset, owned))
    combined = combine_contacts(parts)
    np.testing.assert_allclose(combined.to_numpy(np.float64), whole.to_numpy(np.float64))


def test_proxy_synapses_both_directions_above_threshold():
    contacts = contact_faces(two_boxes(), VOXEL, (0.0, 0.0, 0.0))
    table = contacts_to_synapses(contacts, min_area_nm2=1300.0)
    pairs = sorted(zip(table["pre_id"].tolist(), table["post_id"].tolist()))
    assert pairs == [(1, 2), (1, 3), (2, 1), (3, 1)]  # 1-3 is 1440 nm^2; 2-3 (1152 nm^2) is below the threshold
    assert (table["source"] == "contact_proxy").all()
    assert table.loc[(table.pre_id == 1) & (table.post_id == 2), "size"].item() == 4 * 10 * 30 * 8 / 1e6
