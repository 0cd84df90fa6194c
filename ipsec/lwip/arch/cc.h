/* lwIP compiler/platform glue for esproxy (glibc, gcc or clang, x86_64/arm64). */
#ifndef ESPROXY_LWIP_ARCH_CC_H
#define ESPROXY_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>
#include <arpa/inet.h>

#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_NO_CTYPE_H 0

/* glibc provides byte order functions; lwIP must not define its own. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1
#define lwip_htons(x) htons(x)
#define lwip_htonl(x) htonl(x)

uint32_t esproxy_lwip_rand(void);
#define LWIP_RAND() esproxy_lwip_rand()

void esproxy_lwip_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x) esproxy_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) do { } while (0)

#endif
