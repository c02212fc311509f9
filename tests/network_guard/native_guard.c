/* The tests' no-network guard for code that is not Python: a library preloaded (LD_PRELOAD) into a child process
 * that fails every name lookup and connection outside loopback made by the C library's getaddrinfo, gethostbyname
 * and connect (onnxruntime's telemetry uploader, for one), and appends each to $OVDET_TEST_NETWORK_LOG. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static void record(const char *what, const char *target) {
    const char *log = getenv("OVDET_TEST_NETWORK_LOG");
    if (log == NULL || *log == '\0') return;
    FILE *file = fopen(log, "a");
    if (file == NULL) return;
    fprintf(file, "pid %d: native %s '%s' outside loopback\n", (int)getpid(), what, target ? target : "");
    fclose(file);
}

static int loopback_name(const char *host) {
    struct in_addr v4;
    struct in6_addr v6;
    if (host == NULL || *host == '\0') return 1;
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.localdomain") == 0 ||
        strcasecmp(host, "ip6-localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
    return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static int (*original)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!loopback_name(node)) {
        record("name lookup of", node);
        return EAI_FAIL;
    }
    if (original == NULL) original = dlsym(RTLD_NEXT, "getaddrinfo");
    return original(node, service, hints, res);
}

struct hostent *gethostbyname(const char *name) {
    static struct hostent *(*original)(const char *);
    if (!loopback_name(name)) {
        record("name lookup of", name);
        h_errno = NO_RECOVERY;
        return NULL;
    }
    if (original == NULL) original = dlsym(RTLD_NEXT, "gethostbyname");
    return original(name);
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*original)(int, const struct sockaddr *, socklen_t);
    char text[INET6_ADDRSTRLEN] = "";
    int outside = 0;
    if (address != NULL && address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        outside = (ntohl(v4->sin_addr.s_addr) >> 24) != 127;
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    } else if (address != NULL && address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        outside = !IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) && !IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    }
    if (outside) {
        record("connection to", text);
        errno = ENETUNREACH;
        return -1;
    }
    if (original == NULL) original = dlsym(RTLD_NEXT, "connect");
    return original(fd, address, length);
}
