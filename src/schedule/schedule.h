// Noise schedules shared by the training objectives (src/loss) and the samplers (src/sample): DDPM's.
#pragma once

// DiT / improved-diffusion "linear" schedule, computed in float64 exactly like
// np.linspace(beta_start, beta_end, T) followed by np.cumprod(1 - betas):
//   betas[i] = beta_start + i * (beta_end - beta_start) / (T - 1), betas[T-1] = beta_end exactly,
//   alphas_cumprod[i] = prod_{k<=i} (1 - betas[k]).
// DiT uses T = 1000, 1e-4 -> 0.02, giving alphas_cumprod[999] = 4.0358297653756e-05.
// betas and alphas_cumprod: [T] each (either may be NULL if not wanted).
void ddpm_linear_schedule(int T, double beta_start, double beta_end, double *betas, double *alphas_cumprod);
