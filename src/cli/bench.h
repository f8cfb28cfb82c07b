/* wallex bench: see bench.c. */
#ifndef WALLEX_CLI_BENCH_H
#define WALLEX_CLI_BENCH_H

#include <stdbool.h>
#include <stdint.h>

struct bench_options {
    const char *host; /* IPv4 address */
    uint16_t port;
    int64_t wallets;
    int64_t ops;
    int64_t connections;
    unsigned mix_transfer; /* percent */
    unsigned mix_credit;   /* percent; debits are the rest */
    uint64_t seed;         /* 0: from the clock */
    bool orders;           /* the orders workload instead of the wallet mix */
    const char *token;     /* an admin token (it creates wallets for others, reads
                              /admin/drift); NULL when the server has auth off */
};

/* 0 when the run completed and verified, 1 otherwise. */
int wallex_bench(const struct bench_options *options);

#endif
