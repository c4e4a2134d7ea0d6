/* patch_mask - patch masking as in masked autoencoders (He et al. 2022), in
 * shared kernel C (include/daecl/clc.h), row-granular (plugin.h:
 * DAECL_GRAIN_ROW). The image is tiled by p x p patches from its top-left
 * corner (the last row and column of patches are cut short when p does not
 * divide the height or width); patch i is masked, every pixel of it in
 * every plane set to `value`, when word x of the example's block i is
 * below q. Packed: p[0] = patch side, p[1] = q, p[2] = value. Integer ops
 * and compares only: bit-identical everywhere. */

static inline float daecl_corrupt_row(DAECL_GLOBAL const float *x, daecl_u32 j,
                                      const daecl_row *row, DAECL_PARAMS p)
{
    daecl_u32 h = daecl_row_height(row), w = daecl_row_width(row);
    daecl_u32 side = (daecl_u32)p[0];
    daecl_u32 across = (w + side - 1u) / side; /* patches per image row */
    daecl_u32 in_plane = j % (h * w);
    daecl_u32 y = in_plane / w, xc = in_plane % w;
    daecl_u32 patch = (y / side) * across + xc / side;
    /* u01 is in [0, 1 - 2^-24]: q = 0 keeps every patch and q = 1 masks all. */
    return daecl_u01(daecl_row_block(row, patch).x) < p[1] ? p[2] : x[j];
}
