/* SSE fan-out client for bench/sse-fanout: opens N event streams, reports when all are open,
 * waits for a line on stdin, publishes one message, and measures when each stream received it.
 * In C (epoll) so that the client's own per-socket cost stays far below what it measures.
 * Usage: fanout_client PORT N STREAM_PATH PUBLISH_PATH
 * Prints "open N" once streams are open, then "latency_ms p50 p99 max received". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); exit(1); }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s PORT N STREAM_PATH PUBLISH_PATH\n", argv[0]); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    const char *stream_path = argv[3], *publish_path = argv[4];
    int *fds = calloc(n, sizeof *fds);
    double *latency = calloc(n, sizeof *latency);
    char *done = calloc(n, 1);
    char request[512], buffer[65536];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n", stream_path);

    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        fds[i] = connect_to(port);
        if (write(fds[i], request, strlen(request)) < 0) { perror("write"); return 1; }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    /* Open = the head and the `retry:` preamble arrived (the server sends it once subscribed). */
    int open = 0;
    struct epoll_event events[1024];
    double deadline = now_ms() + 60000;
    while (open < n && now_ms() < deadline) {
        int k = epoll_wait(ep, events, 1024, 1000);
        for (int j = 0; j < k; j++) {
            int i = events[j].data.u32;
            ssize_t got = read(fds[i], buffer, sizeof buffer - 1);
            if (got <= 0) { fprintf(stderr, "stream %d closed while opening\n", i); return 1; }
            buffer[got] = 0;
            if (!done[i] && strstr(buffer, "retry:")) { done[i] = 1; open++; }
        }
    }
    printf("open %d\n", open);
    fflush(stdout);
    if (!fgets(buffer, sizeof buffer, stdin)) return 1;
    memset(done, 0, n);

    char nonce[64], publish[512];
    snprintf(nonce, sizeof nonce, "fanout-%ld", (long)time(NULL));
    snprintf(publish, sizeof publish, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
             publish_path, strlen(nonce), nonce);
    int publisher = connect_to(port);
    double start = now_ms();
    if (write(publisher, publish, strlen(publish)) < 0) { perror("write"); return 1; }
    int received = 0;
    deadline = start + 30000;
    while (received < open && now_ms() < deadline) {
        int k = epoll_wait(ep, events, 1024, 1000);
        double t = now_ms();
        for (int j = 0; j < k; j++) {
            int i = events[j].data.u32;
            ssize_t got = read(fds[i], buffer, sizeof buffer - 1);
            if (got <= 0) continue;
            buffer[got] = 0;
            if (!done[i] && memmem(buffer, got, nonce, strlen(nonce))) {
                done[i] = 1;
                latency[received++] = t - start;
            }
        }
    }
    qsort(latency, received, sizeof *latency, compare);
    double p50 = received ? latency[received / 2] : -1;
    double p99 = received ? latency[(int)(received * 0.99) < received ? (int)(received * 0.99) : received - 1] : -1;
    double max = received ? latency[received - 1] : -1;
    printf("latency_ms %.2f %.2f %.2f %d\n", p50, p99, max, received);
    return received == open ? 0 : 1;
}
