#include "cimageio.h"

#include <png.h>
#include <zlib.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

typedef struct {
    char *err;
    size_t errlen;
} ci_err;

static void on_error(png_structp png, png_const_charp msg) {
    ci_err *e = (ci_err *)png_get_error_ptr(png);
    if (e && e->err && e->errlen) snprintf(e->err, e->errlen, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

void ci_free(void *p) { free(p); }

// libpng's own reader says only "Read Error" when the file ends early; this one says what it means.
static void read_exact(png_structp png, png_bytep out, size_t n) {
    FILE *f = (FILE *)png_get_io_ptr(png);
    if (fread(out, 1, n, f) != n)
        png_error(png, ferror(f) ? "read failed (I/O error)" : "the file ends before the image is complete (truncated or damaged PNG)");
}

// Reads a PNG from an open stream positioned at its start; closes it.
static int png_read_stream(FILE *f, size_t max_pixels, int *width, int *height, int *channels, uint8_t **data,
                           char *err, size_t errlen) {
    ci_err e = {err, errlen};
    *data = NULL;
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        snprintf(err, errlen, "not a PNG file (bad signature)");
        fclose(f);
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(err, errlen, "out of memory");
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return -1;
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return -1;
    }
    png_set_read_fn(png, f, read_exact);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((size_t)w * (size_t)h > max_pixels) {
        snprintf(err, errlen, "image is %ux%u, larger than the limit of %zu pixels", (unsigned)w, (unsigned)h,
                 max_pixels);
        png_longjmp(png, 1);
    }
    int ct = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) {
        if (png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    if (ch != 3 && ch != 4) {
        snprintf(err, errlen, "unsupported PNG layout (%d channels after conversion)", ch);
        png_longjmp(png, 1);
    }
    size_t stride = (size_t)w * ch;
    pixels = (uint8_t *)malloc(stride * h);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows) {
        snprintf(err, errlen, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    *width = (int)w;
    *height = (int)h;
    *channels = ch;
    *data = pixels;
    return 0;
}

int ci_png_read(const char *path, size_t max_pixels, int *width, int *height, int *channels, uint8_t **data,
                char *err, size_t errlen) {
    *data = NULL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "is a folder, not a PNG file");
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    return png_read_stream(f, max_pixels, width, height, channels, data, err, errlen);
}

int ci_png_read_mem(const uint8_t *bytes, size_t n, size_t max_pixels, int *width, int *height, int *channels,
                    uint8_t **data, char *err, size_t errlen) {
    *data = NULL;
    if (n < 8) {
        snprintf(err, errlen, "not a PNG file (%zu bytes)", n);
        return -1;
    }
    FILE *f = fmemopen((void *)bytes, n, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read from memory: %s", strerror(errno));
        return -1;
    }
    return png_read_stream(f, max_pixels, width, height, channels, data, err, errlen);
}

// Writes a PNG to an open stream; closes it (a failed close is a failed write).
static int png_write_stream(FILE *f, int width, int height, int channels, const uint8_t *data,
                            const char *const *text_keys, const char *const *text_values, int ntext, char *err,
                            size_t errlen) {
    ci_err e = {err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(err, errlen, "out of memory");
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntext > 0) {
        png_text *t = (png_text *)calloc((size_t)ntext, sizeof(png_text));
        if (!t) {
            snprintf(err, errlen, "out of memory");
            png_longjmp(png, 1);
        }
        for (int i = 0; i < ntext; i++) {
            // iTXt, uncompressed: UTF-8 text (tEXt is Latin-1 only), no language tag
            t[i].compression = PNG_ITXT_COMPRESSION_NONE;
            t[i].key = (png_charp)text_keys[i];
            t[i].text = (png_charp)text_values[i];
            t[i].lang = NULL;
            t[i].lang_key = NULL;
        }
        png_set_text(png, info, t, ntext);
        free(t);
    }
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(data + (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int ci_png_write(const char *path, int width, int height, int channels, const uint8_t *data,
                 const char *const *text_keys, const char *const *text_values, int ntext, char *err, size_t errlen) {
    if (width < 1 || height < 1 || (channels != 3 && channels != 4)) {
        snprintf(err, errlen, "invalid image geometry %dx%dx%d", width, height, channels);
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot create: %s", strerror(errno));
        return -1;
    }
    return png_write_stream(f, width, height, channels, data, text_keys, text_values, ntext, err, errlen);
}

int ci_png_write_mem(int width, int height, int channels, const uint8_t *data, const char *const *text_keys,
                     const char *const *text_values, int ntext, uint8_t **out, size_t *outlen, char *err,
                     size_t errlen) {
    *out = NULL;
    *outlen = 0;
    if (width < 1 || height < 1 || (channels != 3 && channels != 4)) {
        snprintf(err, errlen, "invalid image geometry %dx%dx%d", width, height, channels);
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = png_write_stream(f, width, height, channels, data, text_keys, text_values, ntext, err, errlen);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    *out = (uint8_t *)buf;
    *outlen = len;
    return 0;
}

int ci_zlib_compress(const uint8_t *src, size_t n, uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    uLongf cap = compressBound((uLong)n);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory compressing %zu bytes", n);
        return -1;
    }
    int rc = compress2(buf, &cap, src, (uLong)n, 9);
    if (rc != Z_OK) {
        free(buf);
        snprintf(err, errlen, "zlib compress2 failed (%d)", rc);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)cap;
    return 0;
}

uint32_t ci_crc32(uint32_t crc, const uint8_t *data, size_t n) { return (uint32_t)crc32(crc, data, (uInt)n); }
