"""Measure latent-arithmetic edits (issue 9): success and drift of attribute edits, judged by an attribute classifier.

Train the classifier once (CelebA sample, the last 1000 faces by name held out, as the runs do):

    nice -n 10 python benchmarks/bench_edits.py --train-classifier runs/attr-classifier \
        --data ../shared/data/celeba-sample --holdout 1000 --epochs 8

Measure runs (each a folder written by `facevae train`; their validation faces are the run's holdout):

    nice -n 10 python benchmarks/bench_edits.py runs/sample-default runs/sample-seed \
        --classifier runs/attr-classifier --out runs/bench-edits

Prototype training variants (plain loop of the default recipe, --vae-epochs epochs; see --train-variant):

    nice -n 10 python benchmarks/bench_edits.py --train-variant cvae --out-run runs/var-cvae --vae-epochs 30

It prints markdown tables (classifier accuracy; success and drift per method and weight; the drift where mean
success first reaches 0.80) and writes the success/drift plots to --out.

Methods (--methods) are the library's (`facevae_nb.arithmetic`): per-face (the default of `run_vectors`: balanced
vectors, each face moved by its own amount to the weight's level of a latent logistic score), mean, balanced,
regression, conditional (mean vectors with the other measured attributes projected out), all on the library's one
weight scale (weight 1 moves the average face lacking the attribute as far as the difference of the two groups' mean
codes, read along the latent score); and controls: random (a direction as long as the mean vector in the codes'
Mahalanobis metric), conditional-correlated, pcaK, half. Every method also reports its mean latent move length.
"""
from __future__ import annotations
import argparse, json, sys, time, platform
from pathlib import Path
import torch

def train_clf(a):
    from facevae_nb.faces import open_faces
    from facevae_nb.data import CELEBA_ATTRS
    from facevae_nb.measure import train_classifier, save_classifier, predict_attrs, attr_accuracy
    faces = open_faces(a.data, image_size=a.image_size)
    tr, va = faces.indices('train', a.holdout), faces.indices('valid', a.holdout)
    t0 = time.time()
    clf = train_classifier(faces, tr, epochs=a.epochs, seed=a.seed, quiet=False)
    acc = attr_accuracy(predict_attrs(clf, faces.images, va), faces.attrs[va])
    info = dict(data=str(a.data), holdout=a.holdout, n_valid=len(va),
                valid_acc=dict(zip(CELEBA_ATTRS, acc['acc'].tolist())), valid_bal_acc=dict(zip(CELEBA_ATTRS, acc['bal_acc'].tolist())))
    f = save_classifier(clf, a.train_classifier, info)
    print(f"trained in {time.time() - t0:.0f} s on {len(tr)} faces; saved {f}")
    print(f"holdout ({len(va)} faces): mean accuracy {acc['acc'].mean():.3f}, mean balanced accuracy {acc['bal_acc'].nanmean():.3f}")

# ----------------------------------------------------------------------------------------------------------------
# measuring runs

def _pca_project(v, z, k):
    "v (D,) projected onto the top-k principal components of the codes z (N, D)."
    zc = z.double() - z.double().mean(0)
    _, _, Vt = torch.linalg.svd(zc, full_matrices=False)
    P = Vt[:k]
    return (v.double() @ P.T @ P).float()

def _random_like(v, L, g):
    "A random direction with the same Mahalanobis length as v under the aggregate covariance L L^T."
    e = torch.randn(len(v), generator=g, dtype=torch.float64)
    u = torch.linalg.solve_triangular(L, v.double()[:, None], upper=False).norm()
    return (L @ e * (u/e.norm())).float()

def variant_vectors(run, model, faces, names, which, seed=0, codes=None):
    "{label: {name: (D,)}} for the vector estimators in `which` (the library's `run_vectors`, and the controls)."
    from facevae_nb.arithmetic import vectors_from_codes, project_out
    from facevae_nb.latents import encode_split
    from facevae_nb.vector_cache import run_vectors
    from facevae_nb.measure import label_correlation
    from facevae_nb.data import CELEBA_ATTRS, attr_index
    if codes is None: enc = encode_split(model, faces, 'train', run=run); codes = enc.mu, enc.attrs
    z, A = codes                                                       # the training codes and labels
    out, g = {}, torch.Generator().manual_seed(seed)
    mean = run_vectors(run, 'mean', model=model)
    for w in which:
        if w == 'mean': out[w] = mean
        elif w == 'per-face': out['per-face (balanced; the default)'] = run_vectors(run, 'per-face', model=model)
        elif w == 'balanced': out[w] = run_vectors(run, 'mean', balanced=True, model=model)
        elif w == 'regression': out[w] = run_vectors(run, 'regression', model=model)
        elif w == 'conditional': out[w] = {n: run_vectors(run, 'mean', keep=[k for k in names if k != n], model=model)[n] for n in names}
        elif w == 'conditional-correlated':   # keep the attributes correlated with the target (|r| >= 0.2), i.e. move only it
            c = label_correlation(A)
            out[w] = {}
            for n in names:
                t = attr_index(n); keep = [CELEBA_ATTRS[k] for k in range(40) if k != t and c[t, k].abs() >= 0.2 and CELEBA_ATTRS[k] in mean]
                out[w][n] = project_out(mean[n], torch.stack([mean[k] for k in keep])) if keep else mean[n]
        elif w.startswith('pca'):
            k = int(w[3:]); out[f'mean, top-{k} PCs'] = {n: _pca_project(mean[n], z, k) for n in names}
        elif w == 'half':
            i = torch.randperm(len(z), generator=g)[:len(z)//2]
            out['mean, half the faces'] = vectors_from_codes(z[i], A[i], 'mean', names=names)
        elif w == 'random':
            L = torch.linalg.cholesky(torch.cov(z.double().T) + 1e-6*torch.eye(z.shape[1], dtype=torch.float64))
            out['random (same Mahalanobis length as mean)'] = {n: _random_like(mean[n], L, g) for n in names}
        else: raise SystemExit(f'unknown vector method {w!r}')
    return out

def _label_net(d, linear=False):
    "A network reading the 40 labels from a code of size d: linear, or an MLP with two hidden layers of 512."
    from torch import nn
    if linear: return nn.Linear(d, 40)
    return nn.Sequential(nn.Linear(d, 512), nn.LeakyReLU(0.2), nn.Linear(512, 512), nn.LeakyReLU(0.2), nn.Linear(512, 40))

def moves_markdown(reports, target=0.8):
    "One row per method: first weight with mean success >= target, and drifts, weight and mean move lengths at exactly target."
    import math as _m
    from facevae_nb.measure import success_point, summarize_report
    L = [f'| method | first w with success ≥ {target:.2f} | success there | drift uncorr. / all 39 there | at exactly {target:.2f}: '
         'drift uncorr. / all | w there | mean move, Euclidean / Mahalanobis | faces moved |', '|---|---|---|---|---|---|---|---|']
    for lab, rows in reports.items():
        p = success_point(summarize_report(rows, ('success', 'drift', 'drift_all', 'move', 'move_mahal', 'moved')), target)
        if _m.isnan(p['weight']): L.append(f"| {lab} | not reached (best {p['success']:.3f}) | | | | | | |"); continue
        mv = [p[f'{k}_at'] for k in ('move', 'move_mahal', 'moved')]   # the mean move lengths, interpolated as the drifts
        L.append(f"| {lab} | {p['weight']:g} | {p['success']:.3f} | {p['drift']:.3f} / {p['drift_all']:.3f} | "
                 f"**{p['drift_at']:.3f}** / {p['drift_all_at']:.3f} | {p['weight_at']:.2f} | {mv[0]:.2f} / {mv[1]:.2f} | {mv[2]:.2f} |")
    return '\n'.join(L)

def measure_run(run, clf, a):
    from facevae_nb.generate import decode_codes, vector_for, add_vectors
    from facevae_nb.runs import run_faces, run_split
    from facevae_nb.generate import encode_images
    from facevae_nb.data import attr_index
    from facevae_nb.measure import (TARGETS, label_correlation, edit_report, predict_attrs, attr_accuracy, report_markdown,
                                    plot_success_drift, success_point, faces_lacking)
    from facevae_nb.core import save_fig
    run = Path(run); model, n_cond = load_variant(run); faces = run_faces(run)
    tr, va = run_split(run, faces, 'train'), run_split(run, faces, 'valid')
    corr = label_correlation(faces.attrs[tr])
    names = list(TARGETS)
    meta = json.loads((run/'model.safetensors').with_name('config.json').read_text())
    m = [r for r in (json.loads(l) for l in (run/'metrics.jsonl').read_text().splitlines()) if r.get('val_kl') is not None]
    best = min(m, key=lambda r: r.get('val_nelbo_bpd', 0.)) if m else {}   # a variant run has one row, without it
    print(f"\n## {run.name}: preset {meta['model']['preset']}, {meta['train']['epochs']} epochs, best epoch {best.get('epoch')}: "
          f"val PSNR {best.get('val_psnr', float('nan')):.2f} dB, KL {best.get('val_kl', float('nan')):.0f} nats")
    # how well the judge reads this model's reconstructions
    t0 = time.time()
    z = encode_images(model, faces.images, va)[0]
    if n_cond: z = torch.cat([z, _signs(faces.attrs[va])], 1)
    pr, po = predict_attrs(clf, decode_codes(model, z)), predict_attrs(clf, faces.images, va)
    ar, ao = attr_accuracy(pr, faces.attrs[va]), attr_accuracy(po, faces.attrs[va])
    print('\n| judge on | ' + ' | '.join(names) + ' | mean of 40 |\n|---|' + '---|'*(len(names) + 1))
    for lab, acc in (('validation photos', ao), (f'their {run.name} reconstructions', ar)):
        print(f'| {lab} (balanced acc.) | ' + ' | '.join(f"{acc['bal_acc'][attr_index(n)]:.3f}" for n in names) + f" | {acc['bal_acc'].nanmean():.3f} |")
    from facevae_nb.arithmetic import vectors_from_codes
    from facevae_nb.latents import encode_split
    enc = encode_split(model, faces, 'train', run=run)   # the training codes, encoded once for every method below
    zt, At = enc.mu, enc.attrs
    if n_cond:   # the conditioned decoder: an edit sets the attribute's label (-1 -> +1 is weight 1); and, for comparison, mean differences of z
        D = model.latent_dim; e = lambda n: torch.zeros(D + n_cond).index_fill_(0, torch.tensor([D + attr_index(n)]), 2.)
        vecs = {'condition label': {n: e(n) for n in names},
                'mean (of z)': {n: torch.cat([v, torch.zeros(n_cond)]) for n, v in vectors_from_codes(zt, At, 'mean', names=names).items()}}
    else:
        vecs = variant_vectors(run, model, faces, names, a.methods, a.seed, codes=(zt, At))
    P = torch.linalg.inv(torch.cov(zt.double().T) + 1e-6*torch.eye(zt.shape[1], dtype=torch.float64))   # for Mahalanobis move lengths
    reports = {}
    for lab, v in vecs.items():
        t1 = time.time()
        reports[lab] = edit_report(model, clf, faces, va, v, names, a.weights, corr=corr, max_faces=a.max_faces, codes=z)
        for r in reports[lab]:   # the latent move of each face, z' - z (per-face amounts differ from face to face)
            sel = faces_lacking(faces, va, r['attr'], a.max_faces)   # the faces edit_report edited
            d = (add_vectors(z[sel], {r['attr']: r['weight']}, v) - z[sel]).double() if not n_cond else vector_for(v, r['attr']).double()[None]*r['weight']
            r.update(move=float(d.norm(dim=1).mean()), moved=float((d.norm(dim=1) > 0).float().mean()),
                     move_mahal=float(((d @ P)*d).sum(1).sqrt().mean()) if d.shape[1] == len(P) else float('nan'))
        p = success_point(reports[lab])
        print(f"  {lab}: {time.time() - t1:.0f} s; success 0.80 at w={p['weight']}, drift {p['drift']:.3f}", file=sys.stderr)
    print(f'\n### {run.name}: success and drift ({a.max_faces} validation faces per attribute at most)\n')
    print(report_markdown(reports, per_weight=a.per_weight))
    print(f'\n### {run.name}: latent move at success 0.80\n')
    print(moves_markdown(reports))
    # per attribute, for the first method
    lab0 = next(iter(reports))
    ws0 = sorted({r['weight'] for r in reports[lab0]})[1:]
    print(f'\n### {run.name}: per attribute ({lab0})\n\n| attribute | faces | uncorrelated attrs | success w=0 | ' +
          ' | '.join(f'w={w:g}' for w in ws0) + ' |\n|---|---|---|---|' + '---|'*len(ws0))
    for n in names:
        rs = [r for r in reports[lab0] if r['attr'] == n]
        print(f"| {n} | {rs[0]['n']} | {rs[0]['n_uncorrelated']} | {rs[0]['success0']:.2f} | " +
              ' | '.join(f"{r['success']:.2f} / {r['drift']:.3f}" for r in rs[1:]) + ' |')
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    save_fig(plot_success_drift(reports, title=f'{run.name} ({meta["model"]["preset"]})'), out/f'{run.name}_success_drift.png')
    (out/f'{run.name}_rows.json').write_text(json.dumps(reports, indent=0))
    print(f'\n({time.time() - t0:.0f} s; plot {out}/{run.name}_success_drift.png)')
    return reports

# ----------------------------------------------------------------------------------------------------------------
# training variants (prototypes; the library's VAE and training loop are unchanged)

def _cond_vae(config, n_cond):
    "A `VAE` whose decoder also takes n_cond attribute values (±1): its code is [z, s] (D + n_cond)."
    from torch import nn
    from facevae_nb.model import VAE
    class CondVAE(VAE):
        def __init__(self, config, n_cond):
            super().__init__(config)
            self.n_cond = n_cond
            flat = config.widths[-1]*self.fs*self.fs
            if n_cond: self.fc_dec = nn.Linear(config.latent_dim + n_cond, flat)
        def decode(self, zc):   # zc: (N, D + n_cond)
            return super().decode(zc)
    return CondVAE(config, n_cond)

def _signs(attrs): return attrs.float()*2 - 1

def train_variant(a):
    """Train a prototype variant for --vae-epochs with the default recipe (Adam 1e-3, cosine, bf16 autocast, flips).

    Its own loop, not the library's `Trainer`, because the point is a different loop: the decoder reads the labels, an
    adversary or a correlation penalty joins the loss. 'default' is the same loop without them, their control; a plain
    model is trained with `facevae train` (`train_command.run_training`)."""
    import math as _m
    from dataclasses import asdict
    from facevae_nb.core import seed_everything, amp_dtype, atomic_write_text
    from facevae_nb.model import make_vae, save_vae
    from facevae_nb.train import train_config, lr_factor
    from facevae_nb.loss import vae_loss, kl_divergence
    from facevae_nb.data import FaceLoader
    from facevae_nb.faces import open_faces
    kind = a.train_variant; out = Path(a.out_run)
    seed_everything(a.seed)
    n_cond, over, adv_w, adv_target, adv_lin, decor_w = 0, {}, 0.0, 'rate', False, 0.0
    for part in kind.split('-'):   # e.g. 'cvae', 'sigma0.14', 'cvae-sigma0.14', 'dim32', 'default'
        if part == 'cvae': n_cond = 40
        elif part.startswith('sigma'): over['sigma'] = float(part[5:])
        elif part.startswith('dim'): over['latent_dim'] = int(part[3:])
        elif part.startswith('advflip'): adv_w, adv_target = float(part[7:]), 'flip'
        elif part.startswith('advlin'): adv_w, adv_lin = float(part[6:]), True
        elif part.startswith('decor'): decor_w = float(part[5:])
        elif part.startswith('adv'): adv_w = float(part[3:])
        elif part != 'default': raise SystemExit(f'unknown variant part {part!r} in {kind!r}')
    base = make_vae('default', a.image_size, **over)
    model = _cond_vae(base.config, n_cond).to(memory_format=torch.channels_last)
    faces = open_faces(a.data, image_size=a.image_size)
    tr, va = faces.indices('train', a.holdout), faces.indices('valid', a.holdout)
    cfg = train_config('default', epochs=a.vae_epochs, seed=a.seed)
    dl = FaceLoader(faces, tr, batch_size=cfg.batch_size, shuffle=True, flip=True, device='cpu', seed=a.seed, with_attrs=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if adv_w:   # Fader-style adversary (Lample et al. 2017): a network reads the 40 labels from mu; the encoder is trained to fool it
        import torch.nn.functional as F
        D = model.latent_dim
        adv = _label_net(D, linear=adv_lin)   # a linear adversary cannot memorise 7,000 faces' labels
        opt_adv = torch.optim.Adam(adv.parameters(), lr=cfg.lr)
        rate = faces.attrs[tr].float().mean(0, keepdim=True)
    total, step, t0, dt = cfg.epochs*len(dl), 0, time.time(), amp_dtype('cpu')
    print(f'training variant {kind} ({n_cond} conditioning labels, {over or "default config"}) for {cfg.epochs} epochs x {len(dl)} steps')
    for ep in range(cfg.epochs):
        acc = torch.zeros(4)
        for x, y in dl:
            for g in opt.param_groups: g['lr'] = cfg.lr*lr_factor(step/total, cfg)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast('cpu', dtype=dt):
                mu, lv = model.encode(x)
                zz = model.reparameterize(mu.float(), lv.float())
                if n_cond: zz = torch.cat([zz, _signs(y)], 1)
                xh = model.decode(zz)
            L = vae_loss(model, x, out=(xh.float(), mu.float(), lv.float()))
            loss, a_acc = L['loss'], 0.0
            ramp = min(1.0, step/(0.3*total))   # Fader ramps the adversary's weight up from 0; the penalty follows suit
            if adv_w:   # 1. the adversary learns to read the labels from mu; 2. the encoder is pushed towards its target
                y01 = y.float()
                la = F.binary_cross_entropy_with_logits(adv(mu.float().detach()), y01)
                opt_adv.zero_grad(set_to_none=True); la.backward(); opt_adv.step()
                logits = adv(mu.float())
                a_acc = ((logits > 0).float() == y01).float().mean().item()
                # the encoder's target: each label's training rate (the adversary learns nothing), or Fader's flipped labels
                tgt = (1 - y01) if adv_target == 'flip' else rate.expand_as(y01)
                loss = loss + adv_w*ramp*F.binary_cross_entropy_with_logits(logits, tgt, reduction='none').sum(1).mean()
            if decor_w:   # no lag, no adversary: penalise the batch correlations of every code dimension with every label
                m_ = mu.float(); m_ = (m_ - m_.mean(0))/(m_.std(0) + 1e-4)
                y_ = y.float(); y_ = (y_ - y_.mean(0))/(y_.std(0) + 1e-4)
                r_ = (m_.T @ y_)/len(y_)                              # (D, 40) batch correlations
                loss = loss + decor_w*ramp*r_.pow(2).sum()
                a_acc = float(r_.abs().mean())   # logged in the adversary column: mean |correlation|
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); step += 1
            acc += torch.tensor([1., L['mse'].item(), L['kl'].item(), a_acc])
        print(f"epoch {ep + 1}: mse {acc[1]/acc[0]:.5f} kl {acc[2]/acc[0]:.1f} adversary acc. {acc[3]/acc[0]:.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():   # validation: PSNR of decode(mu) and KL
        x = faces.get(va); mu, lv = model.encode(x)
        zc = torch.cat([mu, _signs(faces.attrs[va])], 1) if n_cond else mu
        mse = (model.decode(zc) - x).pow(2).mean().item(); kl = kl_divergence(mu, lv).mean().item()
    row = dict(epoch=cfg.epochs, val_psnr=10*_m.log10(1/mse), val_mse=mse, val_kl=kl, minutes=round((time.time() - t0)/60, 2))
    print(row)
    save_vae(model, out/'model.safetensors', metadata=dict(variant=kind, n_cond=n_cond))
    atomic_write_text(out/'metrics.jsonl', json.dumps(row) + '\n')
    atomic_write_text(out/'config.json', json.dumps(dict(model=asdict(model.config), train=asdict(cfg), variant=kind, n_cond=n_cond,
        data=dict(data=str(Path(a.data).resolve()), image_size=a.image_size, holdout=a.holdout, n_train=len(tr), n_valid=len(va))), indent=1))

def load_variant(run):
    "A run's model: the library's loader, or the prototype for variant runs (config.json has 'variant')."
    from safetensors.torch import load_file
    from facevae_nb.model import load_run, VAEConfig
    cfg = json.loads((Path(run)/'config.json').read_text())
    if 'n_cond' not in cfg: return load_run(run, device='cpu'), 0
    m = _cond_vae(VAEConfig(**cfg['model']), cfg['n_cond'])
    m.load_state_dict(load_file(str(Path(run)/'model.safetensors'))); return m.eval(), cfg['n_cond']

def probe_runs(a):
    """How much of the 40 labels the codes still hold: probes trained on the training faces' posterior means and scored
    on the held-out faces (balanced accuracy, mean over the 40 labels), a linear one (logistic regression) and an MLP.
    The adversary of a Fader-style run is scored by the same kind of probe, but on faces it never trained on."""
    import torch.nn.functional as F
    from facevae_nb.generate import encode_images
    from facevae_nb.runs import run_faces, run_split
    from facevae_nb.measure import attr_accuracy
    print('| run | linear probe, bal. acc. (train / held-out) | MLP probe, bal. acc. (train / held-out) |\n|---|---|---|')
    for run in a.probe:
        run = Path(run); model, n_cond = load_variant(run); faces = run_faces(run)
        tr, va = run_split(run, faces, 'train'), run_split(run, faces, 'valid')
        zt, zv = encode_images(model, faces.images, tr)[0], encode_images(model, faces.images, va)[0]
        m, sd = zt.mean(0), zt.std(0) + 1e-6; zt, zv = (zt - m)/sd, (zv - m)/sd
        yt, yv = faces.attrs[tr].float(), faces.attrs[va].float()
        pw = ((1 - yt).sum(0)/yt.sum(0).clamp_min(1)).clamp(max=50)   # balanced: 0.5 is the threshold
        res = []
        for kind in ('linear', 'mlp'):
            torch.manual_seed(0)
            net = _label_net(zt.shape[1], linear=kind == 'linear')
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4 if kind == 'linear' else 0.)
            for ep in range(40):
                for i in torch.randperm(len(zt)).split(128):
                    loss = F.binary_cross_entropy_with_logits(net(zt[i]), yt[i], pos_weight=pw)
                    opt.zero_grad(); loss.backward(); opt.step()
            with torch.no_grad():
                acc = [attr_accuracy(torch.sigmoid(net(x)), y.bool())['bal_acc'].nanmean().item() for x, y in ((zt, yt), (zv, yv))]
            res.append(f'{acc[0]:.3f} / {acc[1]:.3f}')
        print(f'| {run.name} | ' + ' | '.join(res) + ' |', flush=True)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='*', help='run folders to measure')
    p.add_argument('--train-classifier', help='train a classifier and save it in this folder')
    p.add_argument('--classifier', help='a saved classifier folder')
    p.add_argument('--data', default='../shared/data/celeba-sample')
    p.add_argument('--holdout', type=int, default=1000)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--epochs', type=int, default=8, help='classifier training epochs')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='runs/bench-edits')
    p.add_argument('--methods', default='per-face,mean,balanced,regression,random',
                   help='vector methods (facevae_nb.arithmetic): per-face (the default), mean, balanced, regression, conditional; '
                        'controls: random, conditional-correlated, pcaK (e.g. pca32), half')
    p.add_argument('--weights', default='0.5,1,1.5,2,2.5,3,3.5,4')
    p.add_argument('--max-faces', type=int, default=300, help='validation faces per attribute (those lacking it)')
    p.add_argument('--per-weight', action='store_true', help='also print one table row per weight')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--train-variant', help="prototype training variant: 'cvae' (decoder conditioned on the 40 labels), 'default' "
                   "(the same loop without labels), 'sigmaS' (fixed decoder std S: a KL weight (S/sigma_opt)^2), 'dimK' (K latent dims), 'advW' (an adversary on mu, weight W, that the encoder drives to each label's training rate), 'advflipW' (the same towards the flipped labels, as Fader networks), 'advlinW' (a linear adversary), 'decorW' (penalise the batch correlations of mu with the labels, weight W), or parts joined by '-', e.g. cvae-sigma0.14")
    p.add_argument('--out-run', help='run folder for --train-variant')
    p.add_argument('--vae-epochs', type=int, default=30)
    p.add_argument('--probe', nargs='+', help='run folders: how much label information their codes hold (held-out probes)')
    a = p.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    torch.set_num_threads(a.threads)
    a.methods, a.weights = a.methods.split(','), [float(w) for w in a.weights.split(',')]
    if a.train_classifier: train_clf(a)
    if a.train_variant: train_variant(a)
    if a.probe: probe_runs(a)
    if a.runs:
        from facevae_nb.measure import load_classifier, plot_success_drift
        from facevae_nb.core import save_fig
        if not a.classifier: raise SystemExit('pass --classifier FOLDER (train one with --train-classifier)')
        clf = load_classifier(a.classifier, device='cpu')
        print(f"classifier {a.classifier}: trained on {clf.info.get('n_train')} faces of {clf.info.get('data')}")
        allr = {Path(r).name: measure_run(r, clf, a) for r in a.runs}
        if len(allr) > 1:   # the first method of every run on one figure
            save_fig(plot_success_drift({f'{k}: {next(iter(v))}': next(iter(v.values())) for k, v in allr.items()},
                                        title='runs compared'), Path(a.out)/'runs_success_drift.png')

if __name__ == '__main__': main()
