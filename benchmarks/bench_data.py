"""Data pipeline benchmark: decode-once cache and device loader vs the plain PIL / torchvision way.

    python benchmarks/bench_data.py            # full run (a few minutes; run it on a quiet machine)
    python benchmarks/bench_data.py --quick    # a smoke test in well under a minute

Needs the real CelebA folders beside the repo (../shared/data/celeba-sample and celeba-fullsize, or --data).
Prints a markdown table (paste it into BENCHMARKS.md together with the command and the machine line):
1. cache build img/s (all cores, JPEG draft decoding) vs a plain loop of Image.open().convert('RGB') + crop + resize,
   on the 89x109 sample and on full-size 178x218 images (the 32 originals, hard-linked many times over);
2. training batches/s (batch 128, 64 px, random flip) from the cache with FaceLoader vs a torchvision-style
   Dataset (PIL + transforms per image) in a DataLoader with num_workers=0 and 2;
3. the projected time to build the cache of the full CelebA (202,599 full-size images) at the full-size rate.
"""
import argparse, os, platform, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facevae_nb.core import get_device
from facevae_nb.data import FaceLoader, build_cache, crop_box, read_celeba

ROOT = Path(__file__).resolve().parents[1]
FULL_CELEBA = 202_599


def make_folder(dst, src, n):
    "A CelebA folder of `n` images that cycles through the images and attribute rows of `src` (hard links, not copies)."
    ix = read_celeba(src)
    lines = (src/'list_attr_celeba.txt').read_text().splitlines()
    rows = {l.split()[0]: l.split(None, 1)[1] for l in lines[2:] if l.strip()}
    (dst/'img_align_celeba').mkdir(parents=True)
    out = [str(n), lines[1]]
    for i in range(n):
        s = ix.names[i % len(ix)]
        name = f'{i + 1:06d}.jpg'
        try: os.link(ix.files.image_dir/s, dst/'img_align_celeba'/name)
        except OSError: shutil.copy(ix.files.image_dir/s, dst/'img_align_celeba'/name)
        out.append(f'{name} {rows[s]}')
    (dst/'list_attr_celeba.txt').write_text('\n'.join(out) + '\n')
    (dst/'list_eval_partition.txt').write_text(''.join(f'{i + 1:06d}.jpg 0\n' for i in range(n)))
    return dst


def warm(folder):
    "Read every file once so both contenders start from the page cache."
    for p in (folder/'img_align_celeba').iterdir(): p.read_bytes()


def plain_loop(paths, size=64, crop_frac=128/178):
    "The baseline: full decode with PIL, centre crop, resize."
    out = np.empty((len(paths), 3, size, size), np.uint8)
    for i, p in enumerate(paths):
        im = Image.open(p).convert('RGB')
        im = im.crop(tuple(round(v) for v in crop_box(*im.size, crop_frac))).resize((size, size), Image.BICUBIC)
        out[i] = np.asarray(im).transpose(2, 0, 1)
    return out


def time_build(folder, workers, tmp):
    t = time.perf_counter()
    c = build_cache(folder, cache=tmp/f'cache-{folder.name}', rebuild=True, progress=False, workers=workers)
    return len(c)/(time.perf_counter() - t)


def time_plain(folder):
    paths = read_celeba(folder).paths()
    t = time.perf_counter(); plain_loop(paths)
    return len(paths)/(time.perf_counter() - t)


class PILFaces(torch.utils.data.Dataset):
    "The usual way: open, crop, resize, flip and convert each JPEG when it is asked for."
    def __init__(self, paths, size=64, crop_frac=128/178):
        import torchvision.transforms as T
        self.paths = paths
        w, h = Image.open(paths[0]).size
        self.tf = T.Compose([T.CenterCrop(round(w*crop_frac)), T.Resize(size), T.RandomHorizontalFlip(), T.ToTensor()])
    def __len__(self): return len(self.paths)
    def __getitem__(self, i): return self.tf(Image.open(self.paths[i]).convert('RGB'))


def batches_per_s(it, n, device):
    it = iter(it)
    next(it)   # start-up (worker processes, first transfer) is not part of the rate
    t = time.perf_counter()
    for _ in range(n):
        next(it).to(device, non_blocking=True)
    if device.type == 'cuda': torch.cuda.synchronize()
    return n/(time.perf_counter() - t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', default=str(ROOT.parent/'shared'/'data'), help='folder holding celeba-sample and celeba-fullsize')
    ap.add_argument('--quick', action='store_true', help='small sizes: a smoke test, not numbers to report')
    ap.add_argument('--workers', type=int, default=None, help='cache-build processes (default: all cores)')
    ap.add_argument('--device', default=None, help='device for the loader (default: best available)')
    args = ap.parse_args(argv)
    data = Path(args.data)
    sample, full = data/'celeba-sample', data/'celeba-fullsize'
    for f in (sample, full):
        if not (f/'img_align_celeba').is_dir(): sys.exit(f'{f} is missing: pass --data FOLDER holding celeba-sample and celeba-fullsize')
    n_sample = 2048 if args.quick else len(read_celeba(sample))
    n_full = 2048 if args.quick else 8192
    n_batches = 5 if args.quick else 50
    device = get_device(args.device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    tmp = Path(tempfile.mkdtemp(prefix='bench_data_'))
    rows = []
    try:
        # 1. cache build vs plain loop
        src_s = make_folder(tmp/'sample', sample, n_sample)
        src_f = make_folder(tmp/'fullsize', full, n_full)
        build = {}
        for name, folder in (('celeba-sample 89x109', src_s), ('celeba-fullsize 178x218', src_f)):
            warm(folder)
            ours, base = time_build(folder, args.workers, tmp), time_plain(folder)
            build[name] = ours
            rows.append((f'cache build, {name} ({len(read_celeba(folder))} img), img/s', ours, f'plain PIL loop: {base:,.0f}', ours/base, '>= 2x'))
        # 2. batches/s at batch 128, 64 px, flip: the cache is the same 64 px array whatever the source size, while
        #    the per-image pipeline pays for decoding the source JPEGs, so both the 2x-downscaled sample and
        #    full-size CelebA images (the real dataset's size) are measured
        for name, folder in (('celeba-sample 89x109', src_s), ('celeba-fullsize 178x218', src_f)):
            cache = build_cache(folder, cache=tmp/f'cache-{folder.name}', progress=False)
            dl = FaceLoader(cache, 'all', batch_size=128, flip=True, device=device, seed=0)
            loader_batches = min(len(dl) - 1, 200 if not args.quick else 20)
            fast = batches_per_s(_cycle(dl), loader_batches, device)
            ds = PILFaces(read_celeba(folder).paths())
            slow = {}
            for nw in (0, 2):
                tl = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True, num_workers=nw, drop_last=True,
                                                 pin_memory=device.type == 'cuda', persistent_workers=False)
                slow[nw] = batches_per_s(_cycle(tl), n_batches, device)
            rows.append((f'batches/s (128 x 64 px, flip) on {device.type}, source {name}', fast,
                         f'Dataset+DataLoader: {slow[0]:.1f} (workers=0), {slow[2]:.1f} (workers=2)', fast/slow[0], '>= 10x workers=0'))
        # 3. projection to the full dataset
        rate = build['celeba-fullsize 178x218']
        rows.append((f'projected full CelebA cache build ({FULL_CELEBA:,} full-size img), minutes', FULL_CELEBA/rate/60,
                     f'at {rate:,.0f} img/s on {cores} cores', None, '< 3 min'))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): pass
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'no GPU'
    print(f'\nCommand: python benchmarks/bench_data.py {" ".join(sys.argv[1:] if argv is None else argv)}'.rstrip())
    print(f'Machine: {cpu}, {cores} cores, {gpu}; torch {torch.__version__}, Python {platform.python_version()}'
          + ('  (--quick: smoke-test sizes, not for reporting)' if args.quick else '') + '\n')
    print('| measurement | ours | baseline | ratio | goal |\n|---|---:|---|---:|---|')
    for what, ours, base, ratio, goal in rows:
        print(f'| {what} | {ours:,.1f} | {base} | {"" if ratio is None else f"{ratio:.1f}x"} | {goal} |')


def _cycle(it):
    "Batches forever (restarting the epoch), for timing."
    while True: yield from it


if __name__ == '__main__': main()
