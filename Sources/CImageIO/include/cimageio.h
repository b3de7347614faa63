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
// Writes 8-bit RGB (3) or RGBA (4) with optional text chunks (iTXt: UTF-8, uncompressed). Returns 0, or -1 with err set.
int ci_png_write(const char *path, int width, int height, int channels, const uint8_t *data,
                 const char *const *text_keys, const char *const *text_values, int ntext, char *err, size_t errlen);
void ci_free(void *p);
#endif
