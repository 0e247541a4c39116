"""Measure photo-preserving edits (issue 19) beside plain decoded edits, with `measure`'s judge.

A plain edit is the decode dec(z + w v) (64 px); its drift is measured against the reconstruction dec(z). A residual
edit is the photo + up(dec(z + w v) - dec(z)) inside its face frame (`figures.edit_photo`'s `paste_residual`); its
drift is measured against the photo itself. Photos are the run's held-out CelebA faces read from their files at
89x109, and both kinds of edit are framed to the judge's 64 px input the same way (`figures.frame_face`, the frame of
`load_face`). Success: the judge says the added attribute is present, on held-out faces whose label lacks it. Drift:
mean |change| of the judge's probabilities of the attributes uncorrelated with the edited one (|label corr.| < 0.2),
and of all 39 others. The rows are `measure.edit_report`'s, with the run's default vectors (`run_vectors`): plain
edits are what it measures by default; for residual edits its `images` pastes each weight's change into the photos.

    nice -n 5 python benchmarks/bench_photo_edits.py runs/bench16/bench-default \
        --classifier runs/issue19/attr-classifier --max-faces 300 --out runs/issue19/photo-edits.json

It prints markdown tables (the first weight where mean success reaches 0.80 and 0.50, with the drifts there, and
every weight) and writes the rows as JSON.
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
import torch


def measure(a):
    "`measure.edit_report`'s rows for plain and for residual edits of the run's held-out photos."
    from facevae_nb.model import load_run
    from facevae_nb.generate import to_codes
    from facevae_nb.runs import run_faces, run_split
    from facevae_nb.vector_cache import run_vectors
    from facevae_nb.figures import read_photo_pixels, frame_face, paste_residual
    from facevae_nb.measure import TARGETS, WEIGHTS, load_classifier, edit_report
    torch.manual_seed(0)
    model = load_run(a.run, device='cpu'); clf = load_classifier(a.classifier, device='cpu')
    faces = run_faces(a.run); idx = run_split(a.run, faces, 'valid')
    V = run_vectors(a.run, model=model, **({'method': a.method} if a.method else {}),
                    **({'balanced': True} if a.balanced else {}))         # the run's default vectors unless named
    folder = Path(faces.meta.get('image_dir') or Path(faces.meta['source'])/'img_align_celeba')
    names = a.names.split(',') if a.names else list(TARGETS)
    ws = [float(w) for w in (a.weights.split(',') if a.weights else WEIGHTS)]
    S = model.image_size
    photos = torch.stack([read_photo_pixels(folder/faces.names[int(i)]) for i in idx])   # uint8 (N,3,109,89)
    row = torch.zeros(len(faces), dtype=torch.long); row[idx] = torch.arange(len(idx))    # a face's row in `photos`
    z = to_codes(model, frame_face(photos, S))                       # both kinds edit the codes of the framed photos

    def residual(pick, dec, recon):                                   # what the judge sees: the photo + the change
        return frame_face(paste_residual(photos[row[pick]], dec - recon, feather=a.feather), S)

    out = {}
    for kind, images in (('plain', None), ('residual', residual)):
        t0 = time.time()
        out[kind] = edit_report(model, clf, faces, idx, V, names, ws, limit=a.limit, max_faces=a.max_faces,
                                codes=z, images=images)
        print(f'{kind}: {len(names)} attributes in {time.time() - t0:.0f} s', flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('run', help='a run folder trained on CelebA with --holdout (its held-out faces are the photos)')
    p.add_argument('--classifier', required=True, help='the judge: a folder written by save_classifier')
    p.add_argument('--names', default=None, help="attributes, comma-separated (default: measure.TARGETS)")
    p.add_argument('--weights', default='0.5,1,1.5,2,2.5,3,3.5,4,5,6', help='weights, comma-separated')
    p.add_argument('--max-faces', type=int, default=300, help='faces per attribute (held-out, lacking it)')
    p.add_argument('--limit', type=float, default=0.2, help='|label correlation| below which counts as uncorrelated')
    p.add_argument('--feather', type=float, default=0.125, help="paste_residual's feather")
    p.add_argument('--method', default=None, help="run_vectors' method (default: its default)")
    p.add_argument('--balanced', action='store_true', help="run_vectors' balanced=True")
    p.add_argument('--out', default=None, help='write the rows as JSON here')
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from facevae_nb.measure import report_markdown
    t0 = time.time(); rows = measure(a)
    reports = {'plain: the decode (drift vs reconstruction)': rows['plain'],
               'residual: photo + edit (drift vs photo)': rows['residual']}
    print(f"\n{a.run}, judge {a.classifier}, vectors: run_vectors(method={a.method or 'default'}, "
          f"balanced={a.balanced}), {rows['plain'][0]['n']} faces per attribute, {time.time() - t0:.0f} s\n")
    print(report_markdown(reports, 0.8))
    print(); print(report_markdown(reports, 0.5, per_weight=False))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(dict(run=str(a.run), classifier=str(a.classifier), rows=rows), indent=1))


if __name__ == '__main__': main()
