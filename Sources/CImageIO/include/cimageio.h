// PNG reading and writing through libpng. libpng reports errors by longjmp, which must not cross Swift
// frames, so all of it stays here; errors come back as a return code and a message.
#ifndef CIMAGEIO_H
#define CIMAGEIO_H
#include <stddef.h>
#include <stdint.h>

// Reads any PNG (palette, gray, 16-bit, interlaced, with or without alpha) as 8-bit RGB (channels = 3) or RGBA
// (channels = 4). *data is malloc'd [h][w][channels]; free it with ci_free. Returns 0, or -1 with err set.
// Images larger than max_pixels are refused before their pixels are decoded.
int ci_png_read(const char *path, size_t max_pixels, int *width, int *height, int *channels, uint8_t **data,
                char *err, size_t errlen);
// The same from a PNG file's bytes in memory.
int ci_png_read_mem(const uint8_t *bytes, size_t n, size_t max_pixels, int *width, int *height, int *channels,
                    uint8_t **data, char *err, size_t errlen);
// Writes 8-bit RGB (3) or RGBA (4) with optional text chunks (iTXt: UTF-8, uncompressed). Returns 0, or -1 with err set.
int ci_png_write(const char *path, int width, int height, int channels, const uint8_t *data,
                 const char *const *text_keys, const char *const *text_values, int ntext, char *err, size_t errlen);
// The same into memory: *out is malloc'd (free with ci_free), *outlen its size.
int ci_png_write_mem(int width, int height, int channels, const uint8_t *data, const char *const *text_keys,
                     const char *const *text_values, int ntext, uint8_t **out, size_t *outlen, char *err,
                     size_t errlen);
// zlib (RFC 1950) compression of n bytes at level 9, for the APNG writer's frame data. *out is malloc'd (free with
// ci_free), *outlen its size. Returns 0, or -1 with err set.
int ci_zlib_compress(const uint8_t *src, size_t n, uint8_t **out, size_t *outlen, char *err, size_t errlen);
// CRC-32 (ISO 3309, as PNG chunks use) of n bytes, continuing from crc (0 to start).
uint32_t ci_crc32(uint32_t crc, const uint8_t *data, size_t n);
void ci_free(void *p);
#endif
