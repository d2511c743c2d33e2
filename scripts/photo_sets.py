#!/usr/bin/python3
"""Datasets from real photographs that lriad was never tuned on, for checking that training learns.

Normal images are random crops (scale, flips, lighting, sensor noise, JPEG) of real texture
photographs that Debian ships: scikit-image's brick, gravel and grass (512 px photographs) and
GIMP's stone, wood, fabric and leather patterns; parts are a coin photographed by scikit-image's
`coins.png`, placed at a random position and angle on a plain background; fixed scenes ("tray",
"board") are four such coins at fixed places on one photograph of cork or brick that fills the
frame. Test defects are drawn here, independently of lriad's own synthetic anomalies
(src/anomaly/*.cpp): cracks (random walks), holes, stains, scratches, foreign matter (another
photograph's texture), for parts a missing piece, and for fixed scenes a coin missing or misplaced.
Masks mark them.

Sources: scripts/photo_sources.sh puts the photographs in a folder (apt-get download of
python3-skimage and gimp-data; no other network). Needs python3-numpy and python3-opencv.

  scripts/photo_sets.py --sources /tmp/photo_src --out /tmp/sets/A --layout mvtec \
      --categories brick walnut --seed 1
Layouts: mvtec (<cat>/train/good, test/<type>, ground_truth/<type>/*_mask.png, square PNG) and visa
(split_csv/1cls.csv, <cat>/Data/Images/{Normal,Anomaly}/*.JPG, Data/Masks/Anomaly/*.png, 320x240).
"""
import argparse
import os
import struct
import sys

import cv2
import numpy as np

TEXTURES = {  # category -> (source file, tint BGR for grey sources, tile repeat for small patterns)
    "brick": ("brick.png", (0.80, 0.88, 1.00)),
    "gravel": ("gravel.png", (0.92, 0.97, 1.00)),
    "grass": ("grass.png", (0.75, 1.00, 0.85)),
    "granite": ("granite1.pat", (0.95, 0.95, 1.00)),
    "slate": ("slate.pat", (1.00, 0.95, 0.92)),
    "rock": ("rock.pat", None),
    "stone": ("stone33.pat", None),
    "walnut": ("walnut.pat", None),
    "burlap": ("burlap.pat", None),
    "leather": ("leather.pat", None),
    "cork": ("corkboard.pat", None),
    "paper": ("crinklepaper.pat", None),
    "bark": ("bark.pat", None),
}
PARTS = {"coin": "coins.png"}
# Fixed scenes: four coins at fixed places on one photograph of a material, as a camera fixed over
# a board or a tray sees them (each image shifted by a few pixels, lit differently, the coins turned
# a little): a tray of cork with dark rims, a board of brick. The scene fills the frame, so it is
# not a part on a plain background. Besides defects on their faces, a coin may be missing or misplaced.
SCENES = {"tray": ("corkboard.pat", None, True), "board": ("brick.png", (0.80, 0.88, 1.00), False)}
TEXTURE_DEFECTS = ["crack", "hole", "stain", "scratch", "foreign"]
PART_DEFECTS = ["scratch", "hole", "stain", "missing"]
SCENE_DEFECTS = ["missing", "misplaced", "stain", "scratch"]


def read_pat(path):
    data = open(path, "rb").read()
    header, _, w, h, c = struct.unpack(">5I", data[:20])
    px = np.frombuffer(data[header:header + w * h * c], np.uint8).reshape(h, w, c)
    return cv2.cvtColor(px, cv2.COLOR_RGB2BGR) if c == 3 else cv2.cvtColor(px, cv2.COLOR_GRAY2BGR)


def load_source(sources, name, tint):
    path = os.path.join(sources, name)
    img = read_pat(path) if name.endswith(".pat") else cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {path}: run scripts/photo_sources.sh first")
    img = img.astype(np.float32) / 255
    if tint is not None:
        img = img * np.array(tint, np.float32)
    if min(img.shape[:2]) < 400:  # a small tileable pattern: repeat it to a large sheet
        reps = (int(np.ceil(900 / img.shape[0])), int(np.ceil(900 / img.shape[1])), 1)
        img = np.tile(img, reps)
    return img


def texture_crop(src, rng, w, h):
    """A random crop at a random scale, flipped and lit differently: one photograph of the material."""
    scale = rng.uniform(0.8, 1.25)
    cw, ch = int(min(src.shape[1] - 1, w * scale * 1.2)), int(min(src.shape[0] - 1, h * scale * 1.2))
    x, y = rng.integers(0, src.shape[1] - cw), rng.integers(0, src.shape[0] - ch)
    crop = src[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    img = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA)
    gain, bias = rng.uniform(0.9, 1.1), rng.uniform(-0.04, 0.04)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1 + rng.uniform(-0.06, 0.06) * (xx / w - 0.5) + rng.uniform(-0.06, 0.06) * (yy / h - 0.5)
    img = img * gain * light[..., None] + bias
    return np.clip(img + rng.normal(0, 0.01, img.shape).astype(np.float32), 0, 1)


def coin_template(sources):
    """The largest coin of scikit-image's coins.png, cut out with its mask."""
    g = cv2.imread(os.path.join(sources, "coins.png"), cv2.IMREAD_GRAYSCALE)
    if g is None:
        sys.exit("cannot read coins.png: run scripts/photo_sources.sh first")
    blur = cv2.GaussianBlur(g, (5, 5), 0)
    _, th = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    th = cv2.morphologyEx(th, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(th)
    # The largest round component (a coin, not the uneven background at the photo's edge).
    def roundness(i):
        x, y, w, h, area = stats[i]
        return area if 0.8 < w / h < 1.25 and area > 0.6 * w * h and x > 0 and y > 0 else 0
    best = max(range(1, n), key=roundness)
    x, y, w, h = stats[best, :4]
    pad = 4
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(g.shape[1], x + w + pad), min(g.shape[0], y + h + pad)
    mask = (lab[y0:y1, x0:x1] == best).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    coin = g[y0:y1, x0:x1].astype(np.float32) / 255
    colour = np.stack([coin * 0.75, coin * 0.9, coin * 1.05], -1)  # a brass-like tint (BGR)
    return np.clip(colour, 0, 1), mask.astype(np.float32)


def part_image(template, rng, w, h, background):
    coin, mask = template
    side = int(min(w, h) * rng.uniform(0.5, 0.56))
    coin = cv2.resize(coin, (side, side), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR)
    M = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(0, 360), 1.0)
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    M[0, 2] += cx - side / 2
    M[1, 2] += cy - side / 2
    c = cv2.warpAffine(coin, M, (w, h), flags=cv2.INTER_LINEAR)
    m = cv2.warpAffine(mask, M, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.array(background, np.float32) * (1 + 0.05 * (xx / w - 0.5) + rng.uniform(-0.03, 0.03))[..., None]
    shadow = cv2.GaussianBlur(np.roll(np.roll(m[..., 0], 3, 0), 3, 1), (0, 0), 3)[..., None]
    bg = bg * (1 - 0.25 * shadow)
    img = c * rng.uniform(0.92, 1.08) * m + bg * (1 - m)
    return np.clip(img + rng.normal(0, 0.01, img.shape).astype(np.float32), 0, 1), (m[..., 0] > 0.5)


def scene_image(template, sheet, rim, rng, w, h, drop=-1, move=-1):
    """A fixed scene: the same crop of `sheet` (shifted by up to 3 px, lit differently) with four coins
    at fixed places, each turned by up to 10 degrees and moved by up to 2 px. Coin `drop` is left out,
    coin `move` is put half to one diameter away from its place. Returns the image, the coins' mask
    and the mask of the coin left out or moved (its place and, if moved, where it went)."""
    coin, cmask = template
    if sheet.shape[0] < h + 43 or sheet.shape[1] < w + 43:
        sys.exit(f"a fixed scene of {w}x{h} needs a larger photograph than {sheet.shape[1]}x{sheet.shape[0]}: lower --size")
    dx, dy = rng.integers(-3, 4), rng.integers(-3, 4)
    bg = sheet[40 + dy:40 + dy + h, 40 + dx:40 + dx + w].copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = rng.uniform(0.9, 1.1) * (1 + rng.uniform(-0.06, 0.06) * (xx / w - 0.5) + rng.uniform(-0.06, 0.06) * (yy / h - 0.5))
    if rim:  # the tray's dark rims along the top and the bottom of the frame
        band = int(min(w, h) * 0.08)
        edge = np.ones((h, w), np.float32)
        edge[:band], edge[-band:] = 0.45, 0.45
        bg = bg * edge[..., None]
    img = bg * light[..., None]
    side = int(min(w, h) * 0.3)
    c = cv2.resize(coin, (side, side), interpolation=cv2.INTER_AREA)
    m = cv2.resize(cmask, (side, side), interpolation=cv2.INTER_LINEAR)
    coins, changed = np.zeros((h, w), bool), np.zeros((h, w), np.uint8)
    for i, (fx, fy) in enumerate([(0.28, 0.3), (0.72, 0.3), (0.28, 0.7), (0.72, 0.7)]):
        cx, cy = fx * w + rng.uniform(-2, 2), fy * h + rng.uniform(-2, 2)
        if i == move:
            ang = rng.uniform(0, 2 * np.pi)
            d = side * rng.uniform(0.5, 1.0)
            M0 = np.float32([[1, 0, cx - side / 2], [0, 1, cy - side / 2]])
            changed |= (cv2.warpAffine(m, M0, (w, h)) > 0.5).astype(np.uint8)
            cx = float(np.clip(cx + d * np.cos(ang), side / 2, w - side / 2))
            cy = float(np.clip(cy + d * np.sin(ang), side / 2, h - side / 2))
        M = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-10, 10), 1.0)
        M[0, 2] += cx - side / 2
        M[1, 2] += cy - side / 2
        mi = cv2.warpAffine(m, M, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        if i == drop:
            changed |= (mi[..., 0] > 0.5).astype(np.uint8)
            continue
        if i == move:
            changed |= (mi[..., 0] > 0.5).astype(np.uint8)
        ci = cv2.warpAffine(c, M, (w, h), flags=cv2.INTER_LINEAR)
        shadow = cv2.GaussianBlur(np.roll(np.roll(mi[..., 0], 3, 0), 3, 1), (0, 0), 3)[..., None]
        img = img * (1 - 0.3 * shadow * (1 - mi)) * (1 - mi) + ci * light[..., None] * mi
        coins |= mi[..., 0] > 0.5
    return np.clip(img + rng.normal(0, 0.01, img.shape).astype(np.float32), 0, 1), coins, changed


def blob(rng, w, h, cx, cy, r):
    """A smooth irregular blob mask in [0,1] around (cx, cy) of radius ~r."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = np.arctan2(yy - cy, xx - cx)
    wob = 1 + sum(rng.uniform(-0.25, 0.25) * np.cos(k * ang + rng.uniform(0, 6.3)) for k in (2, 3, 5))
    d = np.hypot(xx - cx, yy - cy) / (r * wob)
    return np.clip(1.5 - 1.5 * d, 0, 1)


def walk(rng, w, h, cx, cy, length, jitter):
    pts, ang = [(cx, cy)], rng.uniform(0, 2 * np.pi)
    step = max(2.0, length / 20)
    for _ in range(20):
        ang += rng.normal(0, jitter)
        x, y = pts[-1]
        pts.append((x + step * np.cos(ang), y + step * np.sin(ang)))
    return np.array(pts, np.int32)


def add_defect(img, kind, rng, where, foreign):
    """Draws `kind` on `img` (float BGR) inside `where` (bool mask of allowed centres); returns image, mask."""
    h, w = img.shape[:2]
    ys, xs = np.nonzero(where)
    k = rng.integers(0, len(xs))
    cx, cy, s = float(xs[k]), float(ys[k]), min(w, h)
    out, mask = img.copy(), np.zeros((h, w), np.uint8)
    if kind == "crack":
        pts = walk(rng, w, h, cx, cy, s * rng.uniform(0.2, 0.4), 0.5)
        cv2.polylines(mask, [pts], False, 1, max(1, int(s / 120)) + int(rng.integers(0, 2)))
        out = np.where(mask[..., None] > 0, out * rng.uniform(0.2, 0.45), out)
    elif kind == "scratch":
        pts = walk(rng, w, h, cx, cy, s * rng.uniform(0.2, 0.45), 0.05)
        cv2.polylines(mask, [pts], False, 1, max(1, int(s / 160)))
        out = np.where(mask[..., None] > 0, np.clip(out * 0.4 + 0.6 * rng.uniform(0.75, 0.95), 0, 1), out)
    elif kind == "hole":
        r = s * rng.uniform(0.03, 0.07)
        b = blob(rng, w, h, cx, cy, r)
        mask = (b > 0.2).astype(np.uint8)
        rim = cv2.dilate(mask, np.ones((3, 3), np.uint8)) - mask
        out = out * (1 - b[..., None] * 0.85) + rim[..., None] * 0.15
    elif kind == "stain":
        r = s * rng.uniform(0.06, 0.14)
        b = cv2.GaussianBlur(blob(rng, w, h, cx, cy, r), (0, 0), 2)
        mask = (b > 0.25).astype(np.uint8)
        tone = np.array(rng.choice([(0.2, 0.35, 0.5), (0.3, 0.25, 0.2), (0.1, 0.5, 0.6)]), np.float32)
        a = rng.uniform(0.35, 0.6) * b[..., None]
        out = out * (1 - a) + (out * 0.5 + tone * 0.5) * a
    elif kind == "foreign":
        r = s * rng.uniform(0.05, 0.11)
        b = blob(rng, w, h, cx, cy, r)
        mask = (b > 0.3).astype(np.uint8)
        a = np.clip(b * 1.5, 0, 1)[..., None]
        out = out * (1 - a) + foreign[:h, :w] * a
    elif kind == "missing":  # a bite out of the part: background shows
        r = s * rng.uniform(0.07, 0.12)
        b = blob(rng, w, h, cx, cy, r)
        mask = ((b > 0.3) & where).astype(np.uint8)
        bg = np.median(img[~cv2.dilate(where.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)], 0)
        out = np.where(mask[..., None] > 0, bg[None, None, :] + rng.normal(0, 0.01, out.shape), out)
    return np.clip(out, 0, 1).astype(np.float32), mask


def write(path, img, jpg):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(path, u8, [cv2.IMWRITE_JPEG_QUALITY, 92] if jpg else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layout", choices=["mvtec", "visa"], default="mvtec")
    ap.add_argument("--categories", nargs="+", required=True, help=f"of {sorted(TEXTURES) + sorted(PARTS) + sorted(SCENES)}")
    ap.add_argument("--train", type=int, default=120, help="normal training images per category")
    ap.add_argument("--test-good", type=int, default=30)
    ap.add_argument("--per-defect", type=int, default=8, help="test images per defect type")
    ap.add_argument("--size", type=int, default=0, help="side (mvtec, square) / height (visa); 0 = 256 / 240")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    visa = a.layout == "visa"
    h = a.size or (240 if visa else 256)
    w = h * 4 // 3 if visa else h
    rng = np.random.default_rng(a.seed)
    rows = ["object,split,label,image,mask"]
    foreign_src = load_source(a.sources, "coffee.png", None)
    for cat in a.categories:
        if cat in TEXTURES:
            src = load_source(a.sources, *TEXTURES[cat])
            make = lambda: (texture_crop(src, rng, w, h), np.ones((h, w), bool))
            defects = TEXTURE_DEFECTS
        elif cat in PARTS:
            tpl = coin_template(a.sources)
            bg = rng.uniform(0.25, 0.4, 3)
            make = lambda: part_image(tpl, rng, w, h, bg)
            defects = PART_DEFECTS
        elif cat in SCENES:
            tpl = coin_template(a.sources)
            sheet, rim = load_source(a.sources, *SCENES[cat][:2]), SCENES[cat][2]
            make = lambda drop=-1, move=-1: scene_image(tpl, sheet, rim, rng, w, h, drop, move)[:2]
            defects = SCENE_DEFECTS
        else:
            sys.exit(f"unknown category {cat}")
        n = 0

        def save(img, split, label, dtype, mask):
            nonlocal n
            n += 1
            if visa:
                rel = f"{cat}/Data/Images/{'Anomaly' if label else 'Normal'}/{n:04d}.JPG"
                write(os.path.join(a.out, rel), img, True)
                mrel = ""
                if label:
                    mrel = f"{cat}/Data/Masks/Anomaly/{n:04d}.png"
                    write(os.path.join(a.out, mrel), mask.astype(np.float32), False)
                rows.append(f"{cat},{split},{'anomaly' if label else 'normal'},{rel},{mrel}")
            else:
                sub = "train/good" if split == "train" else f"test/{dtype}"
                write(os.path.join(a.out, cat, sub, f"{n:03d}.png"), img, False)
                if label:
                    write(os.path.join(a.out, cat, "ground_truth", dtype, f"{n:03d}_mask.png"), mask.astype(np.float32), False)

        for _ in range(a.train):
            save(make()[0], "train", 0, "good", None)
        for _ in range(a.test_good):
            save(make()[0], "test", 0, "good", None)
        for d in defects:
            for _ in range(a.per_defect):
                img, part = make()
                fg = texture_crop(foreign_src, rng, w, h)
                if cat in SCENES and d in ("missing", "misplaced"):  # a coin left out or moved
                    k = int(rng.integers(0, 4))
                    img2, _, mask = scene_image(tpl, sheet, rim, rng, w, h, *((k, -1) if d == "missing" else (-1, k)))
                elif cat in PARTS and d == "missing":  # a bite out of the rim
                    p8 = part.astype(np.uint8)
                    rim = (p8 - cv2.erode(p8, np.ones((5, 5), np.uint8))).astype(bool)
                    img2, mask = add_defect_missing(img, rng, rim, part, fg)
                else:
                    if cat in PARTS or cat in SCENES:  # on the part's face
                        centres = cv2.erode(part.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
                    else:
                        centres = np.zeros((h, w), bool)
                        centres[h // 8:h - h // 8, w // 8:w - w // 8] = True
                    img2, mask = add_defect(img, d, rng, centres, fg)
                save(img2, "test", 1, d, mask)
    if visa:
        os.makedirs(os.path.join(a.out, "split_csv"), exist_ok=True)
        open(os.path.join(a.out, "split_csv", "1cls.csv"), "w").write("\n".join(rows) + "\n")
    print(f"wrote {a.layout} set of {a.categories} to {a.out}")


def add_defect_missing(img, rng, centres, part, fg):
    h, w = img.shape[:2]
    ys, xs = np.nonzero(centres)
    k = rng.integers(0, len(xs))
    r = min(w, h) * rng.uniform(0.08, 0.13)
    b = blob(rng, w, h, float(xs[k]), float(ys[k]), r)
    mask = ((b > 0.3) & part).astype(np.uint8)
    outside = ~cv2.dilate(part.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    bg = np.median(img[outside], 0)
    out = np.where(mask[..., None] > 0, bg[None, None, :] + rng.normal(0, 0.01, img.shape), img)
    return np.clip(out, 0, 1).astype(np.float32), mask


if __name__ == "__main__":
    main()
