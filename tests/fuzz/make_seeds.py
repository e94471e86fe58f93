#!/usr/bin/env python3
"""Writes the small seed inputs under tests/fuzz/corpus/<target>/ (stdlib only).

The PNG/JPEG image seeds were written once by data/image.cpp's encoders (write_png, write_jpeg);
everything else is crafted here. Re-running overwrites the crafted files only.
"""
import gzip, json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blobs


# ---- safetensors ----
f32 = struct.pack("<6f", *range(6))
put("fuzz_safetensors", "two_tensors", safetensors(
    [("w", "F32", [2, 3], f32), ("b", "I64", [2], struct.pack("<2q", 1, -1))], {"format": "pt"}))
put("fuzz_safetensors", "scalar_and_empty", safetensors(
    [("s", "BF16", [], b"\x80\x3f"), ("e", "F16", [0, 4], b""), ("u", "U8", [3], b"abc")]))
put("fuzz_safetensors", "all_dtypes", safetensors(
    [(f"t{i}", d, [1], b"\x00" * n) for i, (d, n) in enumerate(
        [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1),
         ("U8", 1), ("BOOL", 1), ("U64", 8), ("U32", 4), ("U16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1)])]))
put("fuzz_safetensors", "bad_offsets", struct.pack("<Q", 60) +
    b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}    ' + b"\0" * 8)
put("fuzz_safetensors", "truncated", safetensors([("w", "F32", [2, 3], f32)])[:-5])

# ---- TOML config ----
put("fuzz_config", "toy_mlp.toml", open(os.path.join(ROOT, "..", "..", "..", "configs", "toy_mlp.toml")).read())
put("fuzz_config", "overrides.toml", 'steps = 10\n[model]\nname = "mlp"\n[optim]\nlr = 1e-3\n--\nsteps=20\noptim.lr=0.5\n')
put("fuzz_config", "types.toml", 'steps = "ten"\nseed = 1.5\n[data]\nbatch_size = -1\n[nope]\nx = [1, 2]\n')
put("fuzz_config", "syntax.toml", '[model\nname = "mlp\nsteps = 1e999\n"\\u00e9" = 1\n')

# ---- tokenizer text ----
put("fuzz_tokenizer_text", "ascii.txt", "A photo of a cat sitting on the mat, isn't it? 123 dogs!!")
put("fuzz_tokenizer_text", "unicode.txt", "l'été à Paris — ça va? 日本語テキスト 😀 &amp; <b>html</b>\u200b\u00a0e\u0301")
put("fuzz_tokenizer_text", "invalid_utf8.bin", b"abc\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98 end")
put("fuzz_tokenizer_text", "specials.txt", "<|startoftext|>hello<|endoftext|> <|endoftext|>")

# ---- tokenizer files: first byte 0 = merges .txt.gz text, 1 = vocab.json + merges.txt, 2 = tokenizer.json ----
merges = "#version: 0.2\nh e\nl l\nhe ll\no</w> w\nc a\nca t</w>\n"
put("fuzz_tokenizer_files", "openai_merges", b"\x00" + merges.encode())
syms = [chr(c) for c in range(33, 127)]
vocab = {s: i for i, s in enumerate(syms + [s + "</w>" for s in syms] + ["he", "ll", "hell", "cat</w>"])}
vocab["<|startoftext|>"] = len(vocab)
vocab["<|endoftext|>"] = len(vocab)
hf_merges = "#version: 0.2\nh e\nl l\nhe ll\nc a\nca t</w>\n"
put("fuzz_tokenizer_files", "hf_files", b"\x01" + json.dumps(vocab).encode() + b"\n@@@\n" + hf_merges.encode())
tj = {"model": {"type": "BPE", "vocab": vocab, "merges": ["h e", "l l", "he ll", "c a", "ca t</w>"]}}
put("fuzz_tokenizer_files", "tokenizer_json", b"\x02" + json.dumps(tj).encode())
put("fuzz_tokenizer_files", "bad_merge_line", b"\x01{\"a\": 0}\n@@@\n#version: 0.2\nthree parts here\n")

# ---- images: crafted BMP, TGA, GIF, PGM-like junk (PNG/JPEG come from write_png/write_jpeg) ----
w, h = 3, 2
row = b"\x00\x00\xff\x00\xff\x00\xff\x00\x00" + b"\x00" * 3   # BGR x3, padded to 12 bytes
bmp = b"BM" + struct.pack("<IHHI", 54 + len(row) * h, 0, 0, 54) + struct.pack(
    "<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(row) * h, 2835, 2835, 0, 0) + row * h
put("fuzz_image", "rgb_3x2.bmp", bmp)
tga = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 2, 2, 32, 8) + bytes(range(16))
put("fuzz_image", "rgba_2x2.tga", tga)
gif = (b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff" +
       b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00\x3b")
put("fuzz_image", "one_pixel.gif", gif)
put("fuzz_image", "not_an_image.txt", "this is not an image")

# ---- annotations: first byte 0 = COCO captions, 1 = VQA questions @@@ annotations, 2 = JSONL ----
coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [{"id": 9, "image_id": 2, "caption": "b one"}, {"id": 10, "image_id": 1, "caption": "a"}]}
put("fuzz_annotations", "coco", b"\x00" + json.dumps(coco).encode())
q = {"data_subtype": "val2014", "image_pattern": "COCO_{subtype}_{id:012}.jpg",
     "questions": [{"image_id": 1, "question": "what color?", "question_id": 10}]}
a = {"annotations": [{"question_id": 10, "image_id": 1, "multiple_choice_answer": "red",
                      "answer_type": "other", "question_type": "what", "answers": [{"answer": "red"}]}]}
put("fuzz_annotations", "vqa", b"\x01" + json.dumps(q).encode() + b"\n@@@\n" + json.dumps(a).encode())
put("fuzz_annotations", "vqa_questions_only", b"\x01" + json.dumps(q).encode())
put("fuzz_annotations", "jsonl", b"\x02" + b'{"image": "a.png", "caption": "first"}\n\n{"image": "b.png", "caption": "x"}\n')

# ---- IDX (plain and gzipped) ----
idx3 = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 3) + bytes(range(18))
idx1 = b"\x00\x00\x08\x01" + struct.pack(">I", 4) + bytes([0, 9, 3, 1])
put("fuzz_idx", "images_2x3x3.idx", idx3)
put("fuzz_idx", "labels_4.idx.gz", gzip.compress(idx1, mtime=0))
put("fuzz_idx", "huge_dims.idx", b"\x00\x00\x08\x04" + struct.pack(">IIII", 60000, 28, 28, 3))
