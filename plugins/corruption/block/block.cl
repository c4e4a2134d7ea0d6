/* block - occlusion by one square per example, in shared kernel C
 * (include/daecl/clc.h), row-granular (plugin.h: DAECL_GRAIN_ROW).
 * A k x k square (clipped to the image's height and width) is placed with
 * its top-left corner uniform over the positions where it fits whole:
 * row y0 from word x, column x0 from word y of the example's block 0. Every
 * plane (channel) of the example shares it. Inside it a pixel becomes
 * `value` (fill 0) or uniform noise in [lo, hi) (fill 1) from word x of
 * block 1 + j, the pixel's own. Packed: p[0] = k, p[1] = fill (0 value,
 * 1 noise), p[2] = value, p[3] = lo, p[4] = hi. Integer ops, compares, one
 * mul and one add: bit-identical on every IEEE device. */

static inline float daecl_corrupt_row(DAECL_GLOBAL const float *x, daecl_u32 j,
                                      const daecl_row *row, DAECL_PARAMS p)
{
    daecl_u32 h = daecl_row_height(row), w = daecl_row_width(row);
    daecl_u32 k = (daecl_u32)p[0];
    daecl_u32 kh = k < h ? k : h, kw = k < w ? k : w;
    daecl_u4 where = daecl_row_block(row, 0u);
    daecl_u32 y0 = daecl_uniform_below(where.x, h - kh + 1u);
    daecl_u32 x0 = daecl_uniform_below(where.y, w - kw + 1u);
    daecl_u32 in_plane = j % (h * w);
    daecl_u32 y = in_plane / w, xc = in_plane % w;
    if (y < y0 || y >= y0 + kh || xc < x0 || xc >= x0 + kw)
        return x[j];
    if (p[1] < 0.5f)
        return p[2];
    float u = daecl_u01(daecl_row_block(row, 1u + j).x);
    return p[3] + (p[4] - p[3]) * u;
}
