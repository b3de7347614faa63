// Sinusoidal timestep embedding: diffusers.models.embeddings.get_timestep_embedding with
// flip_sin_to_cos = True, downscale_freq_shift = 0, scale = 1, max_period = 10000, all in float32.
#include "internal.h"

#include <math.h>

void ck_timestep_embedding(int B, const float *t, int dim, float *out) {
    int half = dim / 2;
    const float neg_log_max = (float)(-log(10000.0));  // -math.log(max_period)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            float exponent = neg_log_max * (float)i / (float)half;   // / (half_dim - downscale_freq_shift)
            float arg = t[b] * expf(exponent);
            o[i] = cosf(arg);                                         // flip_sin_to_cos: [cos, sin]
            o[half + i] = sinf(arg);
        }
        if (dim % 2) o[dim - 1] = 0.0f;                               // odd dim: zero pad
    }
}
