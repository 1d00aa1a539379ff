/* twine: shared definitions for every public header. */
#ifndef TWINE_COMMON_H
#define TWINE_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
#define TW_BEGIN_DECLS extern "C" {
#define TW_END_DECLS }
#else
#define TW_BEGIN_DECLS
#define TW_END_DECLS
#endif

/* Marks a symbol as part of the public ABI; everything else stays hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define TW_API __attribute__((visibility("default")))
#define TW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TW_API
#define TW_PRINTF(fmt, args)
#endif

/* Recovers the structure that embeds `member` from a pointer to it. */
#define TW_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
