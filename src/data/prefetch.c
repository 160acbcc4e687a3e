// Background loading (data.h): worker threads that fill a batch the caller described by its indices,
// the training order, and the double-buffered loader that puts the two together.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "data/data.h"
#include "rng.h"

struct DataPrefetch {
    DataSource *d;
    int workers;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    // the batch in flight (generation counts submits, so a worker never runs a batch twice)
    int64_t *idx;
    int n, cap;
    float *images;
    int32_t *labels;
    uint64_t generation;
    int finished;          // workers done with the current generation
    int busy;              // a batch is submitted and not yet waited for
    int stop;
    char error[1200];      // the first read error of the batch
};

typedef struct { DataPrefetch *p; int k; } WorkerArg;

static void *worker(void *arg) {
    WorkerArg *wa = arg;
    DataPrefetch *p = wa->p;
    int k = wa->k;
    free(wa);
    size_t per = (size_t)p->d->c * p->d->h * p->d->w;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        char err[1200];
        int failed = 0;
        for (int j = k; j < p->n && !failed; j += p->workers) {   // worker k takes every workers-th sample
            int64_t i = p->idx[j];
            if (data_read(p->d, i, p->images + (size_t)j * per, err, sizeof err) != 0) { failed = 1; break; }
            if (p->labels) p->labels[j] = p->d->labels ? p->d->labels[i] : -1;
        }
        pthread_mutex_lock(&p->mu);
        if (failed && !p->error[0]) snprintf(p->error, sizeof p->error, "%s", err);
        if (++p->finished == p->workers) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

DataPrefetch *data_prefetch_new(DataSource *d, int workers) {
    DataPrefetch *p = xcalloc(1, sizeof *p);
    p->d = d;
    p->workers = workers < 1 ? 1 : workers;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = xmalloc(sizeof(pthread_t) * p->workers);
    for (int k = 0; k < p->workers; k++) {
        WorkerArg *wa = xmalloc(sizeof *wa);
        wa->p = p;
        wa->k = k;
        if (pthread_create(&p->threads[k], NULL, worker, wa) != 0) ddm_fatal("cannot start a data loading thread");
    }
    return p;
}

void data_prefetch_submit(DataPrefetch *p, const int64_t *idx, int n, float *images, int32_t *labels) {
    if (p->busy) data_prefetch_wait(p);
    for (int j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= p->d->n) DDM_BUG("prefetch index %lld outside 0..%lld", (long long)idx[j], (long long)p->d->n - 1);
    pthread_mutex_lock(&p->mu);
    if (n > p->cap) p->idx = xrealloc(p->idx, (size_t)(p->cap = n) * sizeof(int64_t));
    memcpy(p->idx, idx, (size_t)n * sizeof(int64_t));
    p->n = n;
    p->images = images;
    p->labels = labels;
    p->finished = 0;
    p->error[0] = 0;
    p->busy = 1;
    p->generation++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void data_prefetch_wait(DataPrefetch *p) {
    if (!p->busy) return;
    pthread_mutex_lock(&p->mu);
    while (p->finished < p->workers) pthread_cond_wait(&p->done, &p->mu);
    p->busy = 0;
    char error[1200];
    snprintf(error, sizeof error, "%s", p->error);
    pthread_mutex_unlock(&p->mu);
    if (error[0]) ddm_fatal("%s", error);
}

void data_prefetch_free(DataPrefetch *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    while (p->busy && p->finished < p->workers) pthread_cond_wait(&p->done, &p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < p->workers; k++) pthread_join(p->threads[k], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p->idx);
    free(p);
}

// ---------------------------------------------------------------------------------------------
// the training order

void data_order_init(DataOrder *o, uint64_t seed, int64_t n) {
    if (n < 1 || n > INT32_MAX) ddm_fatal("a training order over %lld samples (expected 1 to 2^31 - 1)", (long long)n);
    memset(o, 0, sizeof *o);
    o->seed = seed;
    o->n = n;
    o->epoch[0] = o->epoch[1] = -1;
    o->perm[0] = xmalloc((size_t)n * sizeof(int));
    o->perm[1] = xmalloc((size_t)n * sizeof(int));
}

static const int *order_perm(DataOrder *o, int64_t epoch) {
    for (int s = 0; s < 2; s++) if (o->epoch[s] == epoch) return o->perm[s];
    int s = o->next;
    o->next ^= 1;
    Rng rng;
    rng_init(&rng, o->seed ^ 0xDA7A5EEDull, (uint64_t)epoch);
    rng_permutation(&rng, o->perm[s], (int)o->n);
    o->epoch[s] = epoch;
    return o->perm[s];
}

void data_order_batch(DataOrder *o, int64_t step, int batch, int64_t *idx) {
    for (int j = 0; j < batch; j++) {
        int64_t g = step * batch + j;
        idx[j] = order_perm(o, g / o->n)[g % o->n];
    }
}

void data_order_free(DataOrder *o) {
    free(o->perm[0]);
    free(o->perm[1]);
    o->perm[0] = o->perm[1] = NULL;
}

// ---------------------------------------------------------------------------------------------
// the double-buffered loader

struct DataLoader {
    DataSource *d;
    DataOrder order;
    DataPrefetch *pf;
    int batch;
    float *images[2];
    int32_t *labels[2];
    int64_t *idx[2];
    int64_t step[2];     // the step each buffer holds or is being filled with (-1: none)
    int cur;             // the buffer handed out last
    int pending;         // the other buffer is being filled in the background
};

DataLoader *data_loader_new(DataSource *d, uint64_t seed, int batch, int workers) {
    DataLoader *l = xcalloc(1, sizeof *l);
    l->d = d;
    l->batch = batch;
    data_order_init(&l->order, seed, d->n);
    l->pf = data_prefetch_new(d, workers);
    size_t per = (size_t)d->c * d->h * d->w;
    for (int b = 0; b < 2; b++) {
        l->images[b] = xmalloc((size_t)batch * per * sizeof(float));
        l->labels[b] = xmalloc((size_t)batch * sizeof(int32_t));
        l->idx[b] = xmalloc((size_t)batch * sizeof(int64_t));
        l->step[b] = -1;
    }
    return l;
}

const float *data_loader_batch(DataLoader *l, int64_t step, const int32_t **labels, const int64_t **idx) {
    int other = l->cur ^ 1;
    if (l->pending) {
        data_prefetch_wait(l->pf);
        l->pending = 0;
    }
    int use;
    if (l->step[other] == step) use = other;
    else if (l->step[l->cur] == step) use = l->cur;
    else {   // not prefetched (first call, resume, a jump): read it now, in the background threads
        use = other;
        data_order_batch(&l->order, step, l->batch, l->idx[use]);
        data_prefetch_submit(l->pf, l->idx[use], l->batch, l->images[use], l->labels[use]);
        data_prefetch_wait(l->pf);
        l->step[use] = step;
    }
    l->cur = use;
    int next = use ^ 1;   // fetch step + 1 while the caller computes on this one
    data_order_batch(&l->order, step + 1, l->batch, l->idx[next]);
    l->step[next] = step + 1;
    data_prefetch_submit(l->pf, l->idx[next], l->batch, l->images[next], l->labels[next]);
    l->pending = 1;
    if (labels) *labels = l->labels[use];
    if (idx) *idx = l->idx[use];
    return l->images[use];
}

void data_loader_free(DataLoader *l) {
    if (!l) return;
    data_prefetch_free(l->pf);   // waits for a batch in flight (its errors do not matter any more)
    data_order_free(&l->order);
    for (int b = 0; b < 2; b++) { free(l->images[b]); free(l->labels[b]); free(l->idx[b]); }
    free(l);
}
