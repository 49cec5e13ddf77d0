"""Default hyper-parameters of every solver, keyed by (solver, forward model[, prior]).

The single place where tuned values live: ``recon run`` and :func:`recon.solvers.run_solver`
start from :func:`defaults_for` and let explicit keyword arguments override.  Values marked
"tuned" were found by ``examples/benchmarks/tune_solvers.py`` on Train400 images (never
Set12); the problem each was tuned on is named next to it.  Untuned entries are sensible
starting points.

Lookup order: ``(solver, forward_model, prior)``, ``(solver, forward_model)``, ``(solver, "*")``.

Noise-relative entries: ``lam_per_sigma2=c`` means ``lam = c σ²`` and ``lam_per_sigma=c`` means
``lam = c σ``, with ``σ`` the measurement noise level passed to the solver (``recon run`` passes the
file's); the entry's plain ``lam`` is the fall-back when ``σ`` is unknown, an explicit ``lam`` wins.
"""

from __future__ import annotations

DEFAULTS: dict[tuple, dict] = {
    # ------------------------------------------------------------------ generic fall-backs
    ("pnp-admm", "*"): dict(lam=1e-4, rho=0.05, n_iter=40, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "*"): dict(lam=0.23, n_iter=8),
    ("cg", "*"): dict(damping=0.0, n_iter=50),
    ("tv", "*"): dict(lam=0.01, n_iter=200),
    ("fbp", "*"): dict(filter="ramp"),
    ("pnp-pgd", "*"): dict(lam=1e-4, n_iter=50),
    ("red", "*"): dict(lam=0.1, sigma_denoiser=5.0 / 255.0, n_iter=100),
    # n_freqs None: priors.coordinate.auto_n_freqs of the grid (floor(log2 N) - 1 octaves)
    ("coordinate", "*"): dict(encoding="pe", n_freqs=None, width=256, depth=4, n_steps=2000, lr=1e-3,
                              lr_schedule="cosine"),
    # ------------------------------------------------------------------ denoising (identity operator)
    # For a denoiser prior D(·, s) ≈ prox_{s² R} on A = I, the MAP estimate argmin ‖y − x‖²/2 + σ² R(x)
    # is one denoiser call D(y, σ) at the measurement noise level: PnP-ADMM with λ = σ² and one
    # iteration (x = y, v = D(y, sqrt(λ/ρ)) for any ρ), HQS with a one-level schedule [σ], PnP-PGD
    # with step 1 and λ = σ².  Iterating further only re-denoises an already clean image.  On 3
    # Train400 images x σ in {15, 25, 50}/255 with the interim DRUNet the one call beat the 8-level
    # DPIR schedule (see tune_solvers.py --task denoise).
    ("pnp-admm", "denoise"): dict(lam_per_sigma2=1.0, lam=1e-3, rho=1.0, n_iter=1, rho_schedule="fixed"),
    ("hqs", "denoise"): dict(lam=0.23, n_iter=1),
    ("pnp-pgd", "denoise"): dict(lam_per_sigma2=1.0, lam=1e-3, n_iter=1),
    # TV (ROF) weight proportional to the noise level, λ = c σ; c = 0.9 is the examples' value, not yet
    # tuned (tune_solvers.py --task denoise --solvers tv searches c)
    ("tv", "denoise"): dict(lam_per_sigma=0.9, lam=0.1, n_iter=200),
    # ------------------------------------------------------------------ deblurring, circular, σ = 2.55/255
    # Tuned with the interim DRUNet (scratch/weights/drunet.safetensors, 4.25M params, NOT the final
    # weights) on 3 Train400 images (180x180, indices 0-2) x Levin kernels 1 and 5, seeds 100+10i+j:
    #   python examples/benchmarks/tune_solvers.py --task deblur --prior drunet \
    #       --weights scratch/weights/drunet.safetensors --solvers tv,hqs,pnp-admm --n-images 3 --n-kernels 2
    # TV λ: 5e-4 29.77, 1e-3 31.05, 2e-3 30.57 dB.
    # Stored noise-relative (the same values at σ = 2.55/255): on a camera 128x128, Gaussian-blur file with
    # σ = 0.05 the fixed values gave TV 22.43 / PnP-ADMM 19.34 dB, the σ-scaled ones 25.40 / 24.64 dB.
    ("tv", "blur"): dict(lam_per_sigma=0.098, lam=1e-3, n_iter=300),
    # HQS λ (8 its, DPIR schedule 49/255 -> σ): 0.1 26.82, 0.23 31.39, 0.5 31.66 dB.
    # Re-tuned with the shipped GPU-trained DRUNet (same 3 images x Levin 1 and 5, scratch script of this
    # session, the tune_solvers.py problems): λ 0.15 30.81, 0.23 32.21, 0.3 31.88, 0.4 31.31, 0.5 30.83 dB;
    # 12 iterations at λ 0.3: 31.93.  0.23 is DPIR's own value.
    ("hqs", "blur"): dict(lam=0.23, n_iter=8),
    # PnP-ADMM, 24 its, ρ = λ/σ0² growing so the denoiser level goes σ0 = 0.15 -> σ_end:
    #   λ = 1e-4 (≈ σ²·1.5): σ_end 2σ 31.56, σ 31.39;  λ = 2.3e-5: 26.03;  λ = 4e-4: 29.06 dB.
    # (ρ = λ/σ0² is derived from denoiser_sigma0, see recon.solvers._noise_relative)
    # Re-tuned with the shipped GPU-trained DRUNet (λ = c σ², σ_end = 2σ, 24 its, σ0 = 0.15 unless noted):
    #   c 0.25 26.35, 0.35 30.44, 0.45 31.89, 0.5 32.02 (σ0 0.2: 32.02), 0.6 31.90, 0.7 31.65, 1.0 30.89,
    #   1.5 30.02 dB; at c = 0.5: σ_end 1.5σ 31.91, 3σ 31.94; at c = 1: 40 its 30.74 (24: 30.89).
    # Set12 x 8 Levin kernels with these defaults (solver_quality.py --task deblur --full): TV 30.42,
    # PnP-ADMM 32.55, HQS 32.68 dB.  Re-run with the final shipped DRUNet (whole-image fine-tuned; same
    # command, --threads 1, beside another job): TV 30.42, PnP-ADMM 32.55, HQS 32.69 dB; 2.8 / 31.0 / 10.1 s
    # per problem (one core, shared).
    ("pnp-admm", "blur"): dict(lam_per_sigma2=0.5, lam=5e-5, denoiser_sigma0=0.15, n_iter=24,
                               rho_schedule="increasing", rho_growth=1.1915),
    # TV as the PnP prior: a first look on Train400[0] x Levin kernel 1 (one image only):
    ("pnp-admm", "blur", "tv"): dict(lam=1e-4, rho=1e-2, n_iter=30, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "blur", "tv"): dict(lam=0.1, n_iter=8),  # 30.10 dB (λ=0.23: 29.83, 1.0: 28.53)
    # ------------------------------------------------------------------ sparse-view CT, 60 views, 1% noise
    ("fbp", "radon"): dict(filter="hann"),  # tuned: 24.5 dB (ramp 16.6) on 2 Train400 images
    ("cg", "radon"): dict(damping=0.0, n_iter=5),  # tuned: early stopping, 29.1 dB (10 its: 24.4) on 2 Train400
    # All start from the Hann-window FBP (recon.solvers.common.initial_point).
    # TV (Chambolle-Pock): tuned on 3 Train400 images (indices 0-2) at 256x256, 500 iterations,
    #   python examples/benchmarks/tune_solvers.py --task ct --prior tv --solvers tv --n-images 3 --tv-iter 500
    # λ x step_ratio: (1, 0.01) 28.58, (2, 0.01) 28.17, (2, 0.03) 28.74, (3, 0.03) 28.56, (5, 0.03) 28.27 dB;
    # the old equal steps (step_ratio 1) stayed below FBP after 200 iterations (22 dB on Train400[0]).
    # Noise-relative: the tuning problems had sinogram σ = 1.27-1.81 (mean 1.55), so λ = 2 ≈ 1.29 σ; a
    # fixed λ did not transfer (data/radon.h5, 64x64, σ = 0.1: fixed λ = 2 24.79 dB, λ = 1.29 σ 37.85 dB).
    ("tv", "radon"): dict(lam_per_sigma=1.29, lam=2.0, step_ratio=0.03, n_iter=500, bounds=(0.0, 1.0)),
    # PnP-ADMM with the shipped DRUNet (5,500-step weights), 20 iterations, 8 CG steps per data prox,
    # denoiser level sqrt(λ/ρ_k) from σ0 = 0.1 down to σ_end; tuned on 2 Train400 images (0-1), FBP 24.47 dB:
    #   python examples/benchmarks/tune_solvers.py --task ct --prior drunet --solvers fbp,pnp-admm \
    #       --n-images 2 --admm-iter 20 --cg-iter 8
    # (λ, σ_end): (0.3, .02) 23.96, (0.5, .02) 28.88, (1, .01) 30.37, (1, .02) 30.46, (1, .03) 30.52,
    # (0.5, .03) 28.24, (3, .01) 29.94, (3, .02) 29.99, (10, .02) 29.03 dB.
    # Noise-relative as λ = 0.416 σ² (λ = 1 at the tuning σ ≈ 1.55), ρ = λ/σ0² with σ0 = 0.1: on
    # data/radon.h5 (σ = 0.1) 39.77 dB against 29.04 dB with the fixed λ = 1, ρ = 100.
    # Re-checked with the shipped GPU-trained DRUNet on 3 Train400 images at native 180x180 (sinogram σ
    # 0.89-1.28), 20 its: (c, σ0, σ_end, CG) (0.416, 0.1, 0.03, 8) 28.54, same with 30 CG steps 28.54, 60 its
    # 28.43; c 0.2 25.59, 0.3 28.40, 0.5 28.38, 0.8 27.84; (0.416, 0.1, 0.045) 28.65, (0.416, 0.2, 0.045)
    # 28.67, (0.6, 0.2, 0.06) 28.65, (0.416, 0.1, 0.06) 28.58 dB: converged (more CG or ADMM steps change
    # nothing) and flat near the optimum; σ0 = 0.2 -> σ_end = 0.045 kept.
    # The same 3 native-size problems for the baselines (so every CT method has been checked on one tuning
    # set), python examples/benchmarks/tune_solvers.py --task ct --ct-size 0 --solvers fbp,cg,tv \
    #     --tv-per-sigma 0.8,1.29,2.0 --tv-iter 500:
    # FBP filter hann 25.67, hamming 25.46, cosine 24.21, shepp-logan 21.21, ramp 19.55 dB; CG 3 its
    # 24.24, 5 its 26.90, 8 its 25.72; TV λ = c σ with c 0.8 27.70, 1.29 28.09, 2.0 27.94 dB: the values
    # tuned at 256x256 are also the native-size optima, and PnP-ADMM leads TV by 0.58 dB here as on Set12.
    ("pnp-admm", "radon"): dict(lam_per_sigma2=0.416, lam=1.0, denoiser_sigma0=0.2, n_iter=20,
                                rho_schedule="increasing", rho_growth=1.1702, cg_max_iter=8),
    # On the Set12 benchmark (examples/benchmarks/solver_quality.py --task ct --full) these give FBP 21.25,
    # TV 25.02, PnP-ADMM 25.62 dB with the GPU-trained DRUNet (24.64 with the CPU-trained one): Train400's
    # 180x180 images upsampled to 256 are much smoother than Set12, so the Train400 optimum (PnP-ADMM 30.5 vs
    # FBP 24.5) does not carry over.  At Train400's native size the gap to TV is the same as on Set12
    # (PnP-ADMM 28.67 vs TV 28.09, above), more ADMM or CG iterations change nothing, and the x8
    # self-ensemble of the denoiser (solver_quality.py --task ct --full --ensemble) adds 0.13 dB (25.75)
    # for 6x the time: what limits CT is the prior, not the iteration budget or these values.
    # With the whole-image fine-tuned DRUNet (Set12 denoising 30.48 dB at σ 25, was 30.44) the values stay
    # the Train400 optimum (native size, 3 images, λ = c σ², σ0 0.2, 20 its, scratch re-check of the grid
    # c {0.3, 0.416, 0.6} x σ_end {0.03, 0.045, 0.06}: best (0.416, 0.045) 28.70 dB, was 28.67; (0.6, 0.06)
    # 28.64, (0.416, 0.03) 28.61), but the Set12 benchmark moves to 25.52 dB (from 25.62; per image -0.42
    # to +0.08): a better Gaussian denoiser is not a better CT prior at these values.
    # The CT-adapted DRUNet (recon.adapt: the shipped DRUNet fine-tuned on the denoiser inputs of this
    # solver on 384 Train400 CT problems, 3 DAgger rounds; sidecar priors/weights/drunet-ct.json) wants a
    # stronger prior at the end of the schedule than the Gaussian one.  Tuned on Train400 0-7 at native
    # 180x180 (not in its training images), 20 its, 8 CG steps, σ0 = 0.2:
    #   python examples/benchmarks/tune_solvers.py --task ct --ct-size 0 --n-images 8 --prior drunet-ct \
    #       --solvers pnp-admm --admm-iter 20 --cg-iter 8 --admm-per-sigma2 0.416,0.6,0.8 \
    #       --admm-sigma-ends 0.07,0.1,0.13
    # (c, σ_end): (0.416, .07) 29.12, (0.416, .1) 28.68, (0.416, .13) 27.91, (0.6, .07) 29.16, (0.6, .1) 29.26,
    # (0.6, .13) 29.09, (0.8, .07) 28.88, (0.8, .1) 29.15, (0.8, .13) 29.25 dB; the Gaussian DRUNet with its
    # defaults above on the same 8 problems: 28.75 dB.  On the Set12 benchmark (solver_quality.py --task ct
    # --full): 25.83 dB against 25.52 with the Gaussian DRUNet (per image -0.33 to +1.26; TV 25.02, FBP 21.25);
    # with the x8 self-ensemble (--prior drunet-ct --no-ct-adapted --ensemble; valid here because the 60
    # angles over [0, π) map onto themselves under flips and 90° turns) 26.04 dB for 6x the time.
    # Second adaptation phase (the shipped drunet-ct since): one more round from those weights on Train400
    # 8-135 resized to 256x256, the benchmark's size (the streaks of 60 views depend on the size in pixels):
    #   python -m recon.adapt --out checkpoints/drunet_ct256 --prior drunet-ct --name drunet-ct --size 256 \
    #       --train-images 8:136 --rounds 1 --steps 1500 --option lam_per_sigma2=0.6 \
    #       --option denoiser_sigma_end=0.1 --threads 1
    # (74 minutes on one shared core); held-out Train400 0-7 at 256x256: 29.85 -> 30.07 dB.  The values above
    # are kept (tuned for the first phase).  Set12 benchmark (solver_quality.py --task ct --full --prior
    # drunet-ct --no-ct-adapted): PnP-ADMM 26.21 dB (was 25.83; TV 25.02, FBP 21.25): TV + 1 is met without
    # the ensemble, FBP + 6 (27.25) is not.  With --ensemble (x8): 26.28 dB for 6x the time.
    # The grid re-run for the second-phase weights on the same 8 native-size held-out problems (same command
    # as the first phase's): (c, σ_end) (0.45, .07) 28.86, (0.45, .1) 28.59, (0.45, .13) 27.64, (0.6, .07)
    # 28.92, (0.6, .1) 29.06, (0.6, .13) 28.71, (0.8, .07) 28.71, (0.8, .1) 28.97, (0.8, .13) 29.05 dB: the
    # values above are still the optimum (at 29.06 against the first phase's 29.26: the second phase traded
    # some of the native 180x180 size for the benchmark's 256x256).
    # Two third-phase candidates from the shipped weights, one round of 1500 steps each (~56 min per run on one
    # core, the two at once), judged on the held-out Train400 0-7 at 256x256 (adapt's own criterion, seed 200):
    #   --size 256 --train-images 264:392 (more upsampled images):  30.068 -> 30.056 dB
    #   --pad-to 256 --train-images 136:264 (mirror-padded natives): resized 30.068 -> 28.70, padded 28.215 -> 27.275
    # (python -m recon.adapt --out checkpoints/... --prior drunet-ct --name drunet-ct <above> --rounds 1 --steps 1500
    #  --option lam_per_sigma2=0.6 --option denoiser_sigma_end=0.1 --threads 1).  Neither passed, so neither was
    # run on Set12 and the second phase stays shipped: another round of the same recipe has saturated, and the
    # padded images (mirror seams, content up to the corners) teach the wrong artefacts.
    # Two more third-phase candidates (2026-11-29, same start, one round, one core each, ~35 min recording and
    # ~70 min training each), judged by examples/benchmarks/ct_adapt_candidates.py (held-out Train400 0-7 at
    # 256: resized, and as 2x2 mosaics of native-scale crops; shipped 30.068 / 27.829 dB):
    #   --size 256 --train-images 264:392 --steps 1200 --patch 256 --batch 2 (whole-image context):
    #       held-out resized 30.068 -> 30.091, mosaics 27.829 -> 27.925 dB, which passed, so it ran on Set12:
    #       PnP-ADMM 25.85 dB against the shipped 26.21 (image 5 -1.98, image 1 -0.92; solver_quality.py --task ct
    #       --full --prior drunet-ct --no-ct-adapted --weights ...): held-out gains this small are not a better prior;
    #   --size 256 --mosaic 0.5 --train-images 136:264 --steps 1500 (half the images native-crop mosaics):
    #       adapt's held-out (half mosaics) 29.350 -> 28.693 dB; resized 29.297, mosaics 27.366 dB: failed on
    #       every set (not run on Set12).
    # Neither ships.  With the iteration budget, these values, the start point, the ensemble and four data
    # recipes for a third fine-tuning phase of this 32-256-channel DRUNet all spent, FBP + 6 dB on Set12 CT needs a
    # larger prior trained longer (a GPU job), not another CPU round.
    # The start point is not the limit either: from the TV solver's result instead of the Hann FBP (recon run
    # --x0), held-out Train400 0-3 at 256x256 (noise seeds 200+i, one thread): PnP-ADMM 29.52, 33.35, 26.78,
    # 29.01 dB from either start (TV itself 28.75, 32.34, 25.50, 27.82), and σ0 0.1 or 0.15 instead of 0.2 from
    # the TV start within 0.03 dB; the σ0 = 0.2 schedule forgets where it started
    # (python examples/benchmarks/ct_start_point.py --size 256 --n-images 4).
    ("pnp-admm", "radon", "drunet-ct"): dict(lam_per_sigma2=0.6, lam=1.44, denoiser_sigma0=0.2,
                                             denoiser_sigma_end=0.1, n_iter=20, rho_schedule="increasing",
                                             cg_max_iter=8),
    # sigma_end must be given for CT: the measurement σ is in sinogram units, not image units
    ("hqs", "radon"): dict(lam=0.3, n_iter=12, sigma_end=0.015, cg_max_iter=8),
    # NeRF PE vs raw coordinates at an equal step budget, Train400[0] resized to 64x64, 60 views, 1% noise,
    # 1000 Adam steps, 256 wide x 4 deep, cosine schedule (FBP 28.11 dB):
    # raw coordinates lr 1e-3 25.06; PE L=5 (auto) lr 1e-3 28.74, lr 3e-4 27.41; L=6 27.15; Gaussian
    # Fourier features (scale 4) 29.78 dB.  At 128x128 and 300 steps of a 128x3 network the gap was
    # only +1.3 dB (both under-fitted): the claim needs the full-size network and ~1000 steps.
    # Re-checked at native Train400 size (Train400[0], 180x180, FBP 26.58 dB), 256x4, cosine,
    #   python examples/benchmarks/tune_solvers.py --task coordinate --n-images 1 --ct-size 0 \
    #       --coord-freqs auto,7 --coord-lrs 1e-3,3e-3 --coord-steps 1000,2000
    # (grid points measured: 1000 steps: PE L=6 (auto) lr 1e-3 24.74, L=7 24.65, lr 3e-3 24.12; raw
    # coordinates lr 1e-3 23.44, lr 3e-3 23.55; 2000 steps: PE lr 1e-3 26.12 dB).  In the fits' PSNR
    # histories PE was still climbing at step 1000 while raw coordinates had levelled off (gradients
    # through the Radon operator weight high frequencies by ~1/|ω|, and only PE can represent them), so
    # the budget is 2000 for both.
    # Set12 at 256x256 with these values (solver_quality.py --task coordinate --coord-indices 0 (then 1)
    # --coord-size 256 --jobs 2), PE vs raw coordinates: Set12[0] 21.64 vs 18.21 dB (+3.43; FBP 21.12; with
    # 1000 steps 20.18 vs 17.80, +2.38), Set12[1] 23.43 vs 20.97 (+2.46): mean +2.95 dB, just under the
    # issue's +3 (two images only: a fit is 45 minutes on one core here).  With 3000 steps for both
    # (--coord-indices 0,1 --coord-steps 3000): Set12[0] 22.30 vs 18.69 (+3.61), Set12[1] 24.40 vs 22.01
    # (+2.39): mean +2.999 dB; the budget stays 2000 until more steps are checked on Train400.
    # More images at the 2000-step default with the network under bfloat16 autocast (amp="bf16", 2.4x
    # faster per step at 256x256 on this CPU: examples/benchmarks/coordinate_amp.py; solver_quality.py
    # --task coordinate --coord-indices 0,2 (then 3) --coord-size 256 --coord-amp bf16 --jobs 2): Set12[0]
    # 21.60 vs 18.25 (+3.35; float32 +3.43 above: bf16 agrees to within 0.1 dB), Set12[2] 21.33 vs 17.77
    # (+3.56), Set12[3] 20.59 vs 18.13 (+2.46).  Mean over Set12[0-3] at 2000 steps (float32 for 0 and 1):
    # +2.98 dB, again just under +3 (the smoother images 1 and 3 gain less).  Set12[4] (bf16, --coord-indices 4):
    # 19.54 vs 15.14 (+4.40): mean over Set12[0-4] +3.26 dB; Set12[5] 19.59 vs 17.67 (+1.92): mean over
    # Set12[0-5] +3.04 dB (6 of the 12 images; per image +1.92 to +4.40).
    # All 12 images on a lent H100 (bf16 autocast, 2000 steps, the same problems and seeds; three
    # processes of `solver_quality.py --task coordinate --coord-indices 0,1,2,3 (4,5,6,7; 8,9,10,11)
    # --coord-size 256 --coord-amp bf16 --device cuda`, ~55 s per fit with three at once), PE / raw dB:
    #   0 21.59/18.23  1 23.34/21.29  2 21.50/17.96  3 20.58/18.04  4 19.51/15.13  5 19.60/17.70
    #   6 19.96/16.97  7 22.04/19.42  8 21.07/18.13  9 21.71/19.19  10 22.12/19.19  11 21.61/19.57
    # Mean 21.22 vs 18.40 dB: PE + 2.82 dB (median +2.77, per image +1.90 to +4.38; 3 of 12 images >= +3),
    # so the issue's +3 dB is NOT met at this budget.  The GPU agrees with this CPU's bf16 fits to
    # <= 0.2 dB (Set12[4]: 19.51/15.13 vs 19.54/15.14; Set12[5]: 19.60/17.70 vs 19.59/17.67).
    # A TV-regularised fit (regularizer="tv", reg_weight = 1.29 σ: the TV solver's tuned λ, so the objective
    # is the TV solver's with the image parameterised by the network), one Train400 image at its native
    # 180x180 (Train400[0], noise seed 1000, 2000 steps, bf16, one thread, ~7 min per fit; scratch script of
    # the regulariser's session): PE 26.50 vs raw coordinates 24.08 dB (+2.42; the unregularised PE fit of the
    # tuning above: 26.12).  The PE fit climbs to the end of its budget and stays below the TV solver's
    # ~28 dB, so TV is no free gain at this budget and stays off by default; Set12 not measured with it.
    # Start point (init_steps: the first steps of the same 2000-step budget fit the Hann FBP, the start
    # point of every other CT solver, before the fit through the operator; NeRP's prior embedding).  Native
    # Train400 0 and 1 (180x180, 2000 steps, bf16, noise seeds 300+i), init_steps 200 vs 0:
    #   python examples/benchmarks/tune_solvers.py --task coordinate --ct-size 0 --coord-steps 2000 \
    #       --coord-amp bf16 --threads 1 --first-image 1 --n-images 1 --coord-encodings pe --coord-init-steps 200,0
    # (and --coord-encodings none; image 0 likewise), PE / raw coordinates dB:
    #   Train400[0]: from FBP 26.93 / 24.13, from scratch 26.12 (the tuning run above) / 24.02
    #   Train400[1]: from FBP 30.24 / 29.10, from scratch 29.68 / 28.68
    # The start helps PE by +0.69 dB on average (raw coordinates +0.27, they cannot represent the FBP's detail),
    # so the default spends 10% of the budget on it (init_steps=0.1: a fraction, 200 of 2000 steps).
    # All 12 Set12 images at 256x256 with it (this CPU, bf16 autocast, one thread per fit, two at once;
    #   python examples/benchmarks/solver_quality.py --task coordinate --coord-indices 0,1,2 (3,4; 4,...,11) \
    #       --coord-size 256 --coord-amp bf16 --jobs 2
    # 15-27 min per fit), PE / raw dB:
    #   0 22.23/18.53  1 24.24/20.57  2 23.27/17.97  3 21.61/18.49  4 20.66/15.38  5 20.83/17.96
    #   6 21.75/17.33  7 23.33/20.20  8 22.33/18.54  9 22.50/19.55  10 23.27/19.98  11 22.42/19.54
    # Mean 22.37 vs 18.67 dB: PE + 3.70 dB (median +3.48, per image +2.87 to +5.30; 9 of 12 images >= +3):
    # the issue's +3 dB is met on average.  Against the scratch start above (H100, same problems and seeds)
    # the FBP start adds +1.15 dB to PE (21.22 -> 22.37) and +0.27 to raw coordinates (18.40 -> 18.67).
    ("coordinate", "radon"): dict(encoding="pe", n_freqs=None, width=256, depth=4, n_steps=2000, lr=1e-3,
                                  lr_schedule="cosine", init_steps=0.1),
}


def defaults_for(solver: str, forward_model: str | None = None, prior: str | None = None) -> dict:
    """A copy of the default keyword arguments of ``solver`` for ``forward_model`` (and ``prior``)."""
    for key in ((solver, forward_model, prior), (solver, forward_model), (solver, "*")):
        if key in DEFAULTS:
            return dict(DEFAULTS[key])
    return {}


__all__ = ["DEFAULTS", "defaults_for"]
