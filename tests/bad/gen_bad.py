#!/usr/bin/env python3
"""Writes the binary files of the bad-input catalogue (tests/bad/cases.txt):
tests/bad/data/ (IDX, .npy and gzip files broken one way each) and
tests/bad/checkpoint/ (a tiny data set, and safetensors checkpoints of the
model in checkpoint/model.yaml, valid and broken one way each).

The files are committed; this script says how each was made and makes them
again (python3 tests/bad/gen_bad.py). The YAML cases in tests/bad/config/
are written by hand. Big cases (the 100 MB config) are made at test time by
tests/test_bad_inputs.c, not here. Standard library only (no numpy).
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(folder, name, data):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def npy(header, payload, version=1):
    h = header.encode()
    pre = 10 if version == 1 else 12
    h += b" " * ((-(pre + len(h) + 1)) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + payload


def f4_header(shape, descr="<f4", fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def gz(data):
    return gzip.compress(data, mtime=0)


def data_cases():
    u8 = bytes(range(0, 192, 4))  # 48 values: 3 rows of 4x4
    put("data", "wrong_magic.idx", "P5\n28 28\n255\n")  # a PGM image, not IDX
    put("data", "empty.idx", b"")
    put("data", "truncated_header.idx", idx(0x08, [3, 4, 4], b"")[:10])
    put("data", "truncated_data.idx", idx(0x08, [3, 4, 4], u8[:30]))
    put("data", "overflow_dims.idx", idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], bytes(8)))
    put("data", "header_larger_than_file.idx", idx(0x08, [60000, 28, 28], u8))
    put("data", "zero_dims.idx", bytes([0, 0, 8, 0]))
    put("data", "six_dims.idx", idx(0x08, [1, 1, 1, 1, 1, 1], b"\x07"))
    put("data", "int16.idx", idx(0x0B, [2, 2], struct.pack(">4h", 1, 2, 3, 4)))
    put("data", "trailing_bytes.idx", idx(0x08, [3, 4, 4], u8 + b"\x00\x00\x00"))
    put("data", "zero_rows.idx", idx(0x08, [0, 4, 4], b""))
    put("data", "nan.idx", idx(0x0D, [2, 2], struct.pack(">4f", 0.5, 0.25, float("nan"), 1)))
    f4 = struct.pack("<8f", 0, 0.5, 1, 0.25, 0.75, 0.125, 0.5, 1)
    put("data", "complex.npy", npy(f4_header("(2, 2)", "<c8"), bytes(32)))
    put("data", "object.npy", npy(f4_header("(2,)", "|O"), bytes(16)))
    put("data", "float16.npy", npy(f4_header("(2, 4)", "<f2"), bytes(16)))
    put("data", "fortran.npy", npy(f4_header("(2, 4)", fortran=True), f4))
    whole = npy(f4_header("(2, 4)"), f4)
    put("data", "npy_header_beyond_file.npy", whole[:8] + struct.pack("<H", 50000) + whole[10:])
    put("data", "npy_truncated_data.npy", whole[:-9])
    put("data", "npy_malformed.npy", npy("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 4)}", f4))
    put("data", "npy_negative_shape.npy", npy(f4_header("(-2, 4)"), f4))
    put("data", "npy_overflow_shape.npy", npy(f4_header("(4294967296, 4294967296, 4)"), f4))
    put("data", "npy_structured.npy",
        npy("{'descr': [('x', '<f4'), ('y', '<f4')], 'fortran_order': False, 'shape': (4,), }", f4))
    put("data", "npy_version4.npy", whole[:6] + b"\x04" + whole[7:])
    put("data", "npy_scalar.npy", npy(f4_header("()"), f4[:4]))
    put("data", "npy_missing_descr.npy", npy("{'fortran_order': False, 'shape': (2, 4), }", f4))
    good = idx(0x08, [3, 4, 4], u8)
    put("data", "gz_truncated.idx.gz", gz(good)[:-10])
    bad_crc = bytearray(gz(good))
    bad_crc[-8] ^= 0xFF
    put("data", "gz_bad_crc.idx.gz", bytes(bad_crc))
    put("data", "gz_lying_header.idx.gz", gz(idx(0x08, [1000000, 28, 28], bytes(100))))
    put("data", "gz_ends_early.idx.gz", gz(idx(0x08, [10, 4, 4], bytes(100))))
    put("data", "gz_claims_terabytes.idx.gz", gz(idx(0x0D, [0x7FFFFFFF, 784], bytes(64))))
    put("data", "gz_garbage.idx.gz", b"\x1f\x8b\x08\x00" + b"not deflate data at all")
    put("data", "dims_4x2.npy", npy(f4_header("(4, 2)"), f4))  # fine alone; other dims than train.npy
    # outside [0, 1], which the bernoulli likelihood cannot score
    put("data", "outside_unit.npy",
        npy(f4_header("(4, 4)"), struct.pack("<16f", *[-1 + 0.2 * i for i in range(16)])))
    # other values of checkpoint/train.npy's shape: a resume on other data
    put("data", "other_train.npy",
        npy(f4_header("(4, 4)"), struct.pack("<16f", *[((i * 53) % 100) / 100.0 for i in range(16)])))
    # labels for the 4 rows of checkpoint/train.npy; one short; one that
    # numbers a class 300; one with a class the training labels lack
    i4 = lambda *v: npy(f4_header("(%d,)" % len(v), "<i4"), struct.pack("<%di" % len(v), *v))
    put("data", "labels_4.npy", i4(0, 1, 0, 1))
    put("data", "labels_4.idx", idx(0x08, [4], bytes([0, 1, 0, 1])))  # MNIST's label format
    put("data", "labels_3.npy", i4(0, 1, 0))
    put("data", "labels_300.npy", i4(0, 1, 300, 1))
    put("data", "labels_class_2.npy", i4(0, 1, 2, 1))


# ---- checkpoints of the model in checkpoint/model.yaml ---------------------
# D = 4, encoder.0 = 3 sigmoid units, decoder.0 = 4 linear outputs (bernoulli,
# k = 1), SGD with momentum: weights, biases and momentum buffers.

def f32(n, start):
    return struct.pack("<%df" % n, *[start + 0.01 * i for i in range(n)])


TENSORS = [("encoder.0.weight", [3, 4]), ("decoder.0.weight", [4, 3]),
           ("encoder.0.bias", [3]), ("decoder.0.bias", [4])]


def meta(**drop):
    m = {"format": "pt", "daecl.version": "0.1.0", "daecl.noise_key": "2", "daecl.step": "1", "daecl.epoch": "1",
         "daecl.seed": "0", "daecl.epoch_loss_sum": "0", "daecl.epoch_rows": "0",
         "daecl.dim": "4", "daecl.params_per_dim": "1", "daecl.likelihood": "bernoulli",
         "daecl.corruption": "none", "daecl.optimizer": "sgd"}
    for k in drop:
        m.pop(k.replace("_", ".", 1), None)
    return m


def checkpoint(tensors=None, md=None, raw_header=None):
    """tensors: [(name, dtype, shape, bytes)]; data aligned to 8 bytes."""
    if tensors is None:
        tensors = []
        for name, shape in TENSORS:
            n = 1
            for s in shape:
                n *= s
            tensors.append((name, "F32", shape, f32(n, 0.1)))
            tensors.append(("optim.%s.momentum_buffer" % name, "F32", shape, f32(n, 0.0)))
    header, data = {}, b""
    header["__metadata__"] = meta() if md is None else md
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-(8 + len(text))) % 8)
    return struct.pack("<Q", len(text)) + text + data


def tensors_with(change=None, drop=None):
    ts = []
    for name, shape in TENSORS:
        n = 1
        for s in shape:
            n *= s
        for full in (name, "optim.%s.momentum_buffer" % name):
            t = (full, "F32", shape, f32(n, 0.1))
            if drop == full:
                continue
            if change and change[0] == full:
                t = change
            ts.append(t)
    return ts


def checkpoint_cases():
    # the tiny data set of model.yaml: 4 rows of 4 values in [0, 1]
    vals = [((i * 37) % 100) / 100.0 for i in range(16)]
    put("checkpoint", "train.npy", npy(f4_header("(4, 4)"), struct.pack("<16f", *vals)))
    # the same data under another name: a moved file still resumes
    put("data", "moved_train.npy", npy(f4_header("(4, 4)"), struct.pack("<16f", *vals)))
    valid = checkpoint()
    put("checkpoint", "valid.safetensors", valid)
    put("checkpoint", "truncated.safetensors", valid[: len(valid) // 2])
    put("checkpoint", "truncated_data.safetensors", valid[:-20])
    put("checkpoint", "header_beyond_file.safetensors", struct.pack("<Q", len(valid)) + valid[8:])
    put("checkpoint", "header_over_limit.safetensors", struct.pack("<Q", 1 << 40) + valid[8:])
    put("checkpoint", "too_short.safetensors", valid[:5])
    put("checkpoint", "empty.safetensors", b"")
    put("checkpoint", "not_json.safetensors", checkpoint(raw_header=b"{'single': 'quotes'}"))
    put("checkpoint", "header_not_object.safetensors", checkpoint(raw_header=b'"a string"'))
    put("checkpoint", "nul_in_header.safetensors", checkpoint(raw_header=b'{"a\x00": 1}'))
    put("checkpoint", "shape_mismatch.safetensors",
        checkpoint(tensors_with(("encoder.0.weight", "F32", [4, 3], f32(12, 0.1)))))
    put("checkpoint", "wrong_dtype.safetensors",
        checkpoint(tensors_with(("encoder.0.weight", "F64", [3, 4], bytes(96)))))
    put("checkpoint", "unknown_dtype.safetensors",
        checkpoint(tensors_with(("encoder.0.weight", "F8_E5M2", [3, 4], bytes(12)))))
    put("checkpoint", "missing_tensor.safetensors", checkpoint(tensors_with(drop="decoder.0.bias")))
    put("checkpoint", "five_dims.safetensors",
        checkpoint(tensors_with(("encoder.0.weight", "F32", [3, 4, 1, 1, 1], f32(12, 0.1)))))
    put("checkpoint", "offsets_mismatch.safetensors", checkpoint(raw_header=
        b'{"encoder.0.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,40]}}') + bytes(48))
    put("checkpoint", "overlap.safetensors", checkpoint(raw_header=
        b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
        b'"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}') + bytes(24))
    put("checkpoint", "missing_step.safetensors", checkpoint(md=meta(daecl_step=1)))
    # written by daecl 1.0.0, before the noise key 2.0
    put("checkpoint", "noise_key_1.safetensors",
        checkpoint(md=dict(meta(daecl_noise_key=1), **{"daecl.version": "1.0.0"})))


if __name__ == "__main__":
    data_cases()
    checkpoint_cases()
