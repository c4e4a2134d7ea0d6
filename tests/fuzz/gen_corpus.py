#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/.

Run it from anywhere (python3 tests/fuzz/gen_corpus.py); it rewrites every
seed it makes and leaves other files (inputs libFuzzer added, crashes/) alone.
Seeds are small, deterministic and named for what they hold: valid files of
each kind the readers accept, and near misses of each refusal, so a fuzzer
starts next to every branch. Python's standard library only (no numpy).
"""
import gzip
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def gz(data):
    # mtime=0: the same bytes on every run.
    return gzip.compress(data, mtime=0)


# ---- IDX -------------------------------------------------------------------

def idx(type_code, dims, payload):
    head = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + payload


def idx_seeds():
    u8 = bytes(range(0, 240, 20))  # 12 values
    put("idx", "u8_3x2x2.idx", idx(0x08, [3, 2, 2], u8))
    put("idx", "u8_3x2x2.idx.gz", gz(idx(0x08, [3, 2, 2], u8)))
    put("idx", "u8_2x6.idx", idx(0x08, [2, 6], u8))
    put("idx", "labels_u8.idx", idx(0x08, [5], bytes([0, 3, 9, 1, 2])))
    put("idx", "labels_u8.idx.gz", gz(idx(0x08, [5], bytes([0, 3, 9, 1, 2]))))
    put("idx", "labels_i32.idx", idx(0x0C, [3], struct.pack(">3i", 7, 0, 65535)))
    put("idx", "labels_i32_negative.idx", idx(0x0C, [2], struct.pack(">2i", 1, -4)))
    put("idx", "f32_2x3.idx", idx(0x0D, [2, 3], struct.pack(">6f", 0, 1.5, -2, 3.25, 1e30, -0.0)))
    put("idx", "f64_2x2.idx", idx(0x0E, [2, 2], struct.pack(">4d", 0.5, -1, 2, 1e300)))
    put("idx", "f32_nan.idx", idx(0x0D, [1, 2], struct.pack(">2f", 1, float("nan"))))
    put("idx", "i16_2x2.idx", idx(0x0B, [2, 2], struct.pack(">4h", 1, 2, 3, 4)))
    put("idx", "i8_4.idx", idx(0x09, [4], bytes([1, 2, 255, 4])))
    put("idx", "u8_4d.idx", idx(0x08, [1, 2, 1, 2, 1], bytes([1, 2, 3, 4])))
    put("idx", "zero_dims.idx", bytes([0, 0, 8, 0]))
    put("idx", "six_dims.idx", idx(0x08, [1] * 6, b"\x01"))
    put("idx", "zero_rows.idx", idx(0x08, [0, 4], b""))
    put("idx", "truncated_header.idx", idx(0x08, [3, 2, 2], b"")[:9])
    put("idx", "truncated_data.idx", idx(0x08, [3, 2, 2], u8[:7]))
    put("idx", "trailing_bytes.idx", idx(0x08, [2, 2], bytes(6)))
    put("idx", "overflow_dims.idx", idx(0x08, [0xFFFFFFFF] * 5, b"\x00" * 8))
    put("idx", "huge_rows.idx", idx(0x0D, [0x7FFFFFFF, 784], b"\x00" * 16))
    put("idx", "magic_only.idx", b"\x00\x00\x08")
    put("idx", "empty.idx", b"")
    put("idx", "not_idx.txt", b"hello, world\n")
    two = gz(idx(0x08, [2, 2], b"")[:8]) + gz(idx(0x08, [2, 2], b"")[8:] + bytes([1, 2, 3, 4]))
    put("idx", "two_members.idx.gz", two)
    whole = gz(idx(0x08, [3, 2, 2], u8))
    put("idx", "truncated.idx.gz", whole[: len(whole) - 6])
    put("idx", "bad_crc.idx.gz", whole[:-8] + b"\x00\x00\x00\x00" + whole[-4:])
    put("idx", "garbage_after_magic.gz", b"\x1f\x8b\x08\x00garbage!")
    put("idx", "lying_rows.idx.gz", gz(idx(0x08, [1000000, 784], bytes(100))))


# ---- .npy ------------------------------------------------------------------

def npy(header, payload, version=1):
    """A .npy file; header is the dict text, padded as numpy pads it."""
    h = header.encode("latin1" if version < 3 else "utf8")
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h))
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h))
    return head + h + payload


def npy_seeds():
    f4 = struct.pack("<6f", 0, 0.5, 1, -1, 2.5, 3)
    put("npy", "f4_2x3.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4))
    put("npy", "f4_2x3.npy.gz", gz(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4)))
    put("npy", "f4_be_2x3.npy",
        npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", struct.pack(">6f", 0, 1, 2, 3, 4, 5)))
    put("npy", "u1_4x2.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2), }", bytes(range(8))))
    put("npy", "u1_1d.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", bytes([0, 1, 2, 9, 3])))
    put("npy", "f8_2x2.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
                                 struct.pack("<4d", 1, 2, 3, 4)))
    put("npy", "f8_too_big.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }",
                                     struct.pack("<d", 1e300)))
    put("npy", "i4_labels.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                                    struct.pack("<3i", 0, 5, 2)))
    put("npy", "i8_labels.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                    struct.pack("<2q", 1, 70000)))
    put("npy", "v2_f4.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
                                struct.pack("<2f", 1, 2), version=2))
    put("npy", "v3_f4.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                struct.pack("<2f", 1, 2), version=3))
    v2 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", struct.pack("<f", 1), version=2)
    put("npy", "v4.npy", v2[:6] + b"\x04" + v2[7:])
    put("npy", "fortran_2x3.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4))
    put("npy", "fortran_1x6.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }", f4))
    put("npy", "scalar.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", struct.pack("<f", 1)))
    put("npy", "python2_long.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", f4))
    put("npy", "double_quotes.npy", npy('{"descr": "<f4", "fortran_order": False, "shape": (6,)}', f4))
    put("npy", "keys_reordered.npy", npy("{'shape': (3, 2), 'fortran_order': False, 'descr': '<f4'}", f4))
    put("npy", "c8.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", bytes(8)))
    put("npy", "f2.npy", npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", bytes(4)))
    put("npy", "structured.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", bytes(4)))
    put("npy", "negative_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }", b""))
    put("npy", "huge_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }", b""))
    put("npy", "overflow_shape.npy",
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", b""))
    put("npy", "six_dims.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", b"\x01"))
    put("npy", "missing_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", f4))
    put("npy", "duplicate_key.npy", npy("{'descr': '<f4', 'descr': '<f4', 'shape': (6,)}", f4))
    put("npy", "unknown_key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", f4))
    put("npy", "no_brace.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", f4))
    put("npy", "nan.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", struct.pack("<2f", 1, float("inf"))))
    put("npy", "truncated_data.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4[:10]))
    put("npy", "trailing_data.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", f4))
    hdr = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4)
    put("npy", "header_beyond_file.npy", hdr[:8] + struct.pack("<H", 60000) + hdr[10:])
    put("npy", "preamble_only.npy", b"\x93NUMPY\x01\x00")
    put("npy", "magic_only.npy", b"\x93NUM")


# ---- safetensors -------------------------------------------------------------

def safetensors(tensors, meta=None, align=8, raw_header=None):
    """tensors: [(name, dtype, shape, bytes)]; offsets laid out in order."""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if align:
        text += b" " * ((-(8 + len(text))) % align)
    return struct.pack("<Q", len(text)) + text + data


def f32(n, start=0.0):
    return struct.pack("<%df" % n, *[start + 0.125 * i for i in range(n)])


def model_tensors(prefix_state=None):
    """The 4-3-4 model of fuzz_safetensors.c: encoder.0 [3, 4], decoder.0 [4, 3]."""
    out = []
    shapes = [("encoder.0.weight", [3, 4]), ("decoder.0.weight", [4, 3]),
              ("encoder.0.bias", [3]), ("decoder.0.bias", [4])]
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        out.append((name, "F32", shape, f32(n)))
        for st in prefix_state or []:
            out.append(("optim.%s.%s" % (name, st), "F32", shape, f32(n, 1.0)))
    return out


def ckpt_meta(optimizer):
    layers = [{"name": "encoder.0", "in": 4, "out": 3, "activation": "sigmoid", "tied_to": None},
              {"name": "decoder.0", "in": 3, "out": 4, "activation": "linear", "tied_to": None}]
    return {"format": "pt", "daecl.version": "0.1.0", "daecl.step": "12", "daecl.epoch": "3",
            "daecl.seed": "42", "daecl.epoch_loss_sum": "0.5", "daecl.epoch_rows": "4",
            "daecl.dim": "4", "daecl.params_per_dim": "1", "daecl.layers": json.dumps(layers),
            "daecl.likelihood": "bernoulli", "daecl.likelihood_params": "{}",
            "daecl.corruption": "masking", "daecl.optimizer": optimizer,
            "daecl.config": "name: fuzz\ndata:\n  train: /fuzz/train.npy\n"}


def safetensors_seeds():
    put("safetensors", "ckpt_sgd.safetensors", safetensors(model_tensors(["momentum_buffer"]), ckpt_meta("sgd")))
    put("safetensors", "ckpt_adam.safetensors",
        safetensors(model_tensors(["exp_avg", "exp_avg_sq"]), ckpt_meta("adam")))
    put("safetensors", "ckpt_no_meta.safetensors", safetensors(model_tensors(["momentum_buffer"])))
    bad_shape = model_tensors(["momentum_buffer"])
    bad_shape[0] = ("encoder.0.weight", "F32", [4, 3], f32(12))
    put("safetensors", "ckpt_wrong_shape.safetensors", safetensors(bad_shape, ckpt_meta("sgd")))
    put("safetensors", "one_f32.safetensors", safetensors([("w", "F32", [2, 2], f32(4))], {"k": "v"}))
    put("safetensors", "misaligned.safetensors", safetensors([("w", "F32", [3], f32(3))], align=0))
    put("safetensors", "f64.safetensors", safetensors([("w", "F64", [2], struct.pack("<2d", 1, 2))]))
    put("safetensors", "all_dtypes.safetensors", safetensors(
        [("a", "F16", [2], bytes(4)), ("b", "BF16", [1], bytes(2)), ("c", "I64", [1], bytes(8)),
         ("d", "I32", [1], bytes(4)), ("e", "I16", [1], bytes(2)), ("f", "I8", [2], bytes(2)),
         ("g", "U8", [1], bytes(1)), ("h", "BOOL", [1], bytes(1)), ("i", "F32", [1, 1, 1, 1], f32(1))]))
    put("safetensors", "empty_tensor.safetensors", safetensors([("e", "F32", [0, 3], b""), ("w", "F32", [1], f32(1))]))
    put("safetensors", "scalar.safetensors", safetensors([("s", "F32", [], f32(1))]))
    put("safetensors", "five_dims.safetensors", safetensors([("t", "F32", [1, 1, 1, 1, 1], f32(1))]))
    put("safetensors", "unknown_dtype.safetensors", safetensors([("t", "F8_E4M3", [1], b"\x00")]))
    put("safetensors", "header_only.safetensors", safetensors([]))
    put("safetensors", "metadata_only.safetensors", safetensors([], {"a": "b", "c": ""}))
    put("safetensors", "meta_not_string.safetensors", safetensors([], raw_header=b'{"__metadata__":{"a":1}}'))
    put("safetensors", "overlap.safetensors",
        safetensors([], raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                   b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}') + bytes(12))
    put("safetensors", "offsets_beyond.safetensors",
        safetensors([], raw_header=b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + bytes(8))
    put("safetensors", "offsets_mismatch.safetensors",
        safetensors([], raw_header=b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}') + bytes(8))
    put("safetensors", "duplicate_tensor.safetensors",
        safetensors([], raw_header=b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                   b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}') + bytes(8))
    put("safetensors", "not_json.safetensors", safetensors([], raw_header=b"{this is not json"))
    put("safetensors", "not_object.safetensors", safetensors([], raw_header=b"[1, 2, 3]"))
    put("safetensors", "nul_in_header.safetensors", safetensors([], raw_header=b'{"a\x00b": 1}'))
    put("safetensors", "bad_utf8.safetensors", safetensors([], raw_header=b'{"\xc3\x28": 1}'))
    put("safetensors", "huge_shape.safetensors",
        safetensors([], raw_header=b'{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],'
                                   b'"data_offsets":[0,0]}}'))
    put("safetensors", "header_len_beyond.safetensors", struct.pack("<Q", 1000) + b"{}")
    put("safetensors", "header_len_huge.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
    put("safetensors", "short.safetensors", b"\x02\x00\x00")
    put("safetensors", "empty.safetensors", b"")


# ---- configs -----------------------------------------------------------------

SEP = "\n==\n"


def config_seeds():
    for name in ("fashion-mnist.yaml", "noise-ablation.yaml"):
        path = os.path.join(ROOT, "configs", name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                put("config", name, f.read())
    put("config", "minimal.yaml", "data: {train: train.npy}\n")
    put("config", "minimal_overrides.yaml",
        "data: {train: train.npy}\n" + SEP + "train.epochs=3" + SEP + "corruption.p=0.5" + SEP +
        "model.encoder.0.units=500" + SEP + "corruption.plugin=gaussian" + SEP +
        "corruption.clip=[0, 1]" + SEP + "corruption.sigma=0.5")
    put("config", "every_key.yaml", """name: every-key
seed: 7
data:
  train: a/train.npy
  test: ../test.npy
  train_labels: /abs/labels.idx
  test_labels: ""
  train_limit: 100
  test_limit: 0
  resident_max_mb: 12.5
model:
  encoder:
    - {units: 64, activation: relu}
    - units: 32
      activation: tanh
  decoder:
    - {units: 64, activation: linear}
  tied_weights: false
corruption: {plugin: salt_pepper, p: 0.2, min: -1, max: 1}
likelihood: {plugin: gaussian_learned, min_log_var: -5, max_log_var: 5}
optimizer: {name: adamw, lr: 1e-3, weight_decay: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-7}
train: {epochs: 2, batch_size: 16, log_every: 0, max_steps: 10, checkpoint_every: 5, checkpoint_unit: step}
eval: {denoising: false, probe: false, probe_baseline: false, probe_l2: 0.001, probe_tol: 0.0001, probe_max_iter: 50}
backend: {plugin: opencl, platform: "pocl", type: cpu, index: 0, binaries: "", gemm: daecl}
output: {dir: "out dir/x"}
""")
    put("config", "tied_sgd.yaml", """data: {train: x.idx.gz}
model: {encoder: [{units: 10}, {units: 5, activation: sigmoid}], decoder: mirror, tied_weights: true}
optimizer: {name: sgd, lr: 0.5, momentum: 0.9, nesterov: true}
corruption: gaussian
likelihood: gaussian
backend: cpu
""")
    put("config", "plugin_shorthand.yaml", "data: {train: t}\ncorruption: none\nlikelihood: bernoulli\nbackend: {plugin: cpu, threads: 2}\n")
    put("config", "anchors.yaml", """layer: &l {units: 8, activation: relu}
data: {train: t.npy}
""")
    put("config", "anchors_ok.yaml", """data: &d {train: t.npy, test: t.npy}
model:
  encoder: [&l {units: 8, activation: relu}, *l]
""")
    put("config", "alias_bomb.yaml", """a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
""")
    put("config", "deep.yaml", "a: " + "[" * 40 + "]" * 40 + "\n")
    put("config", "quoted_strings.yaml",
        'name: "a\\x41b"\ndata: {train: "x\\ty.npy", test: \'it\'\'s.npy\'}\noutput: {dir: "\\u00e9t\\u00e9"}\n')
    put("config", "block_scalars.yaml", "data:\n  train: |\n    multi\n    line\n  test: >-\n    folded\n    text\n")
    put("config", "numbers.yaml", """data: {train: t, train_limit: 0x10, test_limit: 1e3}
optimizer: {lr: .5, momentum: 0.9e0}
train: {epochs: +3, batch_size: 0o17, log_every: 1_000}
seed: 9007199254740991
""")
    put("config", "bools.yaml", "data: {train: t}\neval: {denoising: no, probe: True, probe_baseline: off}\nmodel: {tied_weights: yes}\n")
    put("config", "nulls.yaml", "data: {train: t, test: ~, train_labels: null}\ncorruption:\nlikelihood: ~\n")
    put("config", "unknown_keys.yaml", "data: {train: t, trian_limit: 3}\ntrian: {epochs: 1}\n")
    put("config", "wrong_types.yaml", "data: {train: [a, b]}\ntrain: {epochs: many, batch_size: 1.5}\n")
    put("config", "name_escape.yaml", 'name: "../x"\ndata: {train: t}\n' + SEP + "name=/abs" + SEP + 'name="a\\0b"')
    put("config", "overrides_only.yaml", SEP + "data.train=x.npy" + SEP + "model.encoder=[{units: 3}]" + SEP +
        "model.decoder.0.units=4" + SEP + "backend.plugin=opencl" + SEP + "backend.type=gpu")
    put("config", "overrides_bad.yaml", "data: {train: t}\n" + SEP + "train..epochs=1" + SEP + "=3" + SEP +
        "nokey" + SEP + "model.encoder.9.units=1" + SEP + "data.train.x=1" + SEP + "train.epochs=[")
    put("config", "two_docs.yaml", "data: {train: t}\n---\ndata: {train: u}\n")
    put("config", "tags.yaml", "data: !!map {train: !!str t}\n")
    put("config", "duplicate.yaml", "data: {train: t}\ndata: {train: u}\n")
    put("config", "top_list.yaml", "- data\n- train\n")
    put("config", "empty.yaml", "")
    put("config", "comment_only.yaml", "# nothing here\n")
    put("config", "bad_utf8.yaml", b"data: {train: \xff\xfe}\n")
    put("config", "bom.yaml", b"\xef\xbb\xbfdata: {train: t}\n")


# ---- plugin descriptors --------------------------------------------------------
# The recipe format is documented at the top of fuzz_descriptor.c.

F_KIND = {"corruption": 0, "likelihood": 2, "backend": 3}
NUM = {0: 0, 1: 1, -1: 2, 0.5: 3, 2: 4, 10: 5, 1e6: 6, "inf": 7, "-inf": 8, "nan": 9}
T = {"float": 1, "int": 2, "bool": 3, "string": 4, "enum": 5, "float2": 6}


def s(text):
    if text is None:
        return b"\xff"
    b = text.encode() if isinstance(text, str) else text
    return bytes([len(b)]) + b


def n(v):
    return bytes([NUM[v]])


def param(name, type_, d0=0, d1=0, lo="-inf", hi="inf", def_str=None, choices=None, doc="a doc line"):
    return s(name) + bytes([T.get(type_, type_) if isinstance(type_, str) else type_]) + \
        n(d0) + n(d1) + n(lo) + n(hi) + s(def_str) + s(choices) + s(doc)


def desc(kind="corruption", name="fz", params=(), size_sel=0, major=0, minor=0, sizes=0,
         unset=0, params_null=0, init=0, check=0, ops=b"\x00", ppd=0, cl=None, n_params=None,
         raw_kind=None):
    k = raw_kind if raw_kind is not None else F_KIND[kind]
    out = bytes([size_sel, major & 0xff, minor & 0xff, sizes, k]) + s(name) + bytes([unset])
    out += bytes([len(params) if n_params is None else n_params, params_null])
    out += b"".join(params)
    out += bytes([init, check]) + ops + bytes([ppd]) + s(cl)
    return out


def descriptor_seeds():
    put("descriptor", "corruption_plain", desc())
    put("descriptor", "corruption_float", desc(params=[param("p", "float", 0.5, 0, 0, 1)]))
    put("descriptor", "corruption_cl", desc(cl="float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p) { return x; }"))
    put("descriptor", "every_type", desc(params=[
        param("f", "float", 0.5, 0, 0, 1), param("i", "int", 2, 0, 0, 10), param("b", "bool", 1, 0, 0, 1),
        param("s", "string", def_str="text: with # yaml"), param("e", "enum", def_str="b", choices="a|b|c d"),
        param("r", "float2", -1, 1, "-inf", "inf")]))
    put("descriptor", "string_quotes", desc(params=[param("s", "string", def_str="'\"\\\n\t")]))
    put("descriptor", "enum_yaml_words", desc(params=[param("e", "enum", def_str="null", choices="yes|no|null|~|1.5")]))
    put("descriptor", "likelihood", desc("likelihood", "fz_l", ppd=1))
    put("descriptor", "likelihood_k2", desc("likelihood", "fz_l2", ppd=2, params=[param("v", "float", -1, 0, "-inf", 0)]))
    put("descriptor", "backend", desc("backend", "fz_b", params=[param("threads", "int", 0, 0, 0, 1e6)]))
    put("descriptor", "init_ok_check_ok", desc(init=1, check=1))
    put("descriptor", "check_refuses", desc(check=2))
    # one near miss per refusal
    put("descriptor", "refuse_init", desc(init=2))
    put("descriptor", "refuse_init_silent", desc(init=3))
    put("descriptor", "refuse_major", desc(major=1))
    put("descriptor", "refuse_minor", desc(minor=1))
    put("descriptor", "refuse_small_descriptor", desc(size_sel=2))
    put("descriptor", "refuse_sizes", desc(sizes=4))
    put("descriptor", "refuse_kind", desc(raw_kind=7))
    put("descriptor", "refuse_kind_zero", desc(raw_kind=255))
    put("descriptor", "refuse_name", desc(name="Bad-Name"))
    put("descriptor", "refuse_name_null", desc(name=None))
    put("descriptor", "refuse_name_long", desc(name="a" * 64))
    put("descriptor", "refuse_unset", desc(unset=7))
    put("descriptor", "refuse_too_many_params", desc(n_params=33))
    put("descriptor", "refuse_no_schema", desc(n_params=2, params_null=1))
    put("descriptor", "refuse_param_name", desc(params=[param("plugin", "float")]))
    put("descriptor", "refuse_param_twice", desc(params=[param("a", "float"), param("a", "int")]))
    put("descriptor", "refuse_param_doc", desc(params=[param("a", "float", doc=None)]))
    put("descriptor", "refuse_param_range", desc(params=[param("a", "float", 0, 0, 1, 0)]))
    put("descriptor", "refuse_param_nan", desc(params=[param("a", "float", 0, 0, "nan", 1)]))
    put("descriptor", "refuse_param_default", desc(params=[param("a", "float", 2, 0, 0, 1)]))
    put("descriptor", "refuse_param_int", desc(params=[param("a", "int", 0.5, 0, 0, 1)]))
    put("descriptor", "refuse_param_bool", desc(params=[param("a", "bool", 0.5, 0, 0, 1)]))
    put("descriptor", "refuse_param_string", desc(params=[param("a", "string", def_str=None)]))
    put("descriptor", "refuse_param_enum", desc(params=[param("a", "enum", def_str="x", choices="a|b")]))
    put("descriptor", "refuse_param_type", desc(params=[param("a", 9)]))
    put("descriptor", "refuse_param_float2", desc(params=[param("a", "float2", 1, -1, "-inf", "inf")]))
    put("descriptor", "refuse_packed", desc(params=[param("p%d" % i, "float2", 0, 0) for i in range(9)]))
    put("descriptor", "refuse_no_ops", desc(ops=b"\x01"))
    put("descriptor", "refuse_small_ops", desc(ops=b"\x02\x04\x00"))
    put("descriptor", "refuse_missing_op", desc(ops=b"\x03\x00\x00\x00\x00"))
    put("descriptor", "refuse_backend_op", desc("backend", "fz_b", ops=b"\x03\xfd\xff\xff\xff"))
    put("descriptor", "refuse_ppd", desc("likelihood", "fz_l", ppd=5))
    put("descriptor", "refuse_duplicate", desc(name="fz_corruption"))


def main():
    idx_seeds()
    npy_seeds()
    safetensors_seeds()
    config_seeds()
    descriptor_seeds()
    for t in ("config", "idx", "npy", "safetensors", "descriptor"):
        crashes = os.path.join(HERE, "crashes", t)
        os.makedirs(crashes, exist_ok=True)
        keep = os.path.join(crashes, ".gitkeep")
        if not os.listdir(crashes):
            open(keep, "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
