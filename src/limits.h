/*
 * Every bound in wallex, in one place (like SQLite's sqliteLimit.h). Each
 * limit names its unit last and says why it has the value it has. Nothing
 * in the server is unbounded: queues, batches, bodies, pages and retry loops
 * all stop at one of these.
 */
#ifndef WALLEX_LIMITS_H
#define WALLEX_LIMITS_H

/*
 * The core's bounds and those every domain shares live here. A domain's own
 * bounds (items per order, depth of a folder tree) live at the top of its
 * own header, so that adding a domain edits no core file.
 */

/* Ids (walletId, orderId, productId, ...) per API.md: 1-64 chars. */
#define WX_ID_BYTES_MAX 64

/* Stream categories ("wallet", "order"): the part of a stream id before
 * its ':'. */
#define WX_CATEGORY_BYTES_MAX 15

/* Stream ids are "<category>:<id>". */
#define WX_STREAM_ID_BYTES_MAX (WX_CATEGORY_BYTES_MAX + 1 + WX_ID_BYTES_MAX)

/* Domains one process composes (wallets, orders, files, and room). */
#define WX_DOMAINS_MAX 8

/* Idempotency-Key per API.md: 1-255 visible ASCII characters. */
#define WX_IDEM_KEY_BYTES_MAX 255

/* Idempotency records live this long unless configured otherwise (API.md). */
#define WX_IDEM_TTL_MS_DEFAULT (24LL * 60 * 60 * 1000)

/* Expired idempotency records are deleted in slices this big so the writer
 * never stalls on one long DELETE. */
#define WX_IDEM_EXPIRE_BATCH_MAX 1000

/* How often the writer looks for expired idempotency records. */
#define WX_IDEM_EXPIRE_INTERVAL_MS 10000

/* X-Correlation-Id we accept from clients; longer ones are a 400. */
#define WX_CORRELATION_ID_BYTES_MAX 128

/* W3C traceparent is exactly 55 characters in version 00. */
#define WX_TRACEPARENT_BYTES 55

/* Request bodies: API.md says over 64 KiB is 413. */
#define WX_BODY_BYTES_MAX (64 * 1024)

/* JSON nesting: our bodies are flat objects; depth beyond this is hostile. */
#define WX_JSON_DEPTH_MAX 8

/* Free-text description on credits, debits and transfers. */
#define WX_DESCRIPTION_BYTES_MAX 1024

/* Fields of one flat JSON object read by base/jflat (a stored event has
 * at most 9). */
#define WX_JFLAT_FIELDS_MAX 16

/* A stored event's data. The largest the codec writes is about 8.5 KiB (a
 * description of control characters, each escaped to six bytes, and ids);
 * decoding unescapes into a buffer this big, and longer data is corrupt. */
#define WX_EVENT_DATA_BYTES_MAX (16 * 1024)

/* An event's metadata as the writer writes it: correlation id (128
 * bytes), causation id, time, traceparent (55), actor (64), token id, with
 * keys and quotes under 512 bytes. Reading the actor back refuses more. */
#define WX_EVENT_METADATA_BYTES_MAX 1024

/* The request target (path and query, or the whole absolute-form URI):
 * longer is 414. Our longest real URLs are ids and cursors, under 200. */
#define WX_URL_BYTES_MAX 2048

/* Paging per API.md: limit 1-1000, default 50. */
#define WX_PAGE_LIMIT_MAX 1000
#define WX_PAGE_LIMIT_DEFAULT 50

/* A page's bytes: a page that reaches this ends early, with a nextCursor.
 * 1000 events of 6.5 KiB made one 6.5 MB answer; 300 slow readers of it
 * held 2 GB. 1 MiB is over a hundred typical events or ledger entries. */
#define WX_PAGE_BYTES_MAX (1024 * 1024)

/* Commands waiting for the writer. Past this, new commands get 503 with
 * Retry-After instead of growing memory without bound. */
#define WX_WRITER_QUEUE_MAX 65536

/* Commands decided and committed in one transaction. DESIGN.md measured
 * SQLite at ~65k events/s with 100-event transactions and ~73k with 1000;
 * past ~1000 the gain is small and the latency of the batch grows. */
#define WX_WRITER_BATCH_COMMANDS_MAX 1024

/* Events one command may emit, over all its streams (a transfer emits
 * three, paying an order two). A command that would emit more fails with
 * 500 rather than commit part of itself. */
#define WX_COMMAND_EVENTS_MAX 16

/* Streams one command may touch (a transfer touches three, paying an
 * order two). */
#define WX_COMMAND_STREAMS_MAX 8

/* Times a command that lost a version race is decided again on fresh
 * state (DESIGN.md §3): another node appended to one of its streams
 * between our load and our commit. Each round reloads the streams and
 * costs one commit; losing this many in a row means the stream is hot on
 * several nodes at once, and the command answers 409 version_conflict
 * rather than spin (never 503: nothing failed, and never applied on
 * stale state). */
#define WX_WRITER_CONFLICT_RETRIES_MAX 8

/* Events read in one go to bring the writer's cached states of the streams
 * that lost a race up to the log (one read for all of them, rather than a
 * fold of each). A round that would need more drops those states instead,
 * and each is folded again on its next use. At most a read page
 * (WX_SCAN_BATCH_EVENTS_MAX). */
#define WX_WRITER_CATCH_UP_EVENTS_MAX 4096

/* After a lost race, how long the writer reads the log's new events before
 * each batch to keep its cached states current (es/writer.c,
 * cache_follow_log); each further conflict extends it. */
#define WX_WRITER_FOLLOW_MS 2000

/* Aggregate states kept in the writer's memory cache (LRU beyond this). */
#define WX_CACHE_STREAMS_MAX (256 * 1024)

/* A snapshot of an aggregate is stored every this many events of its
 * stream (configurable), in the same transaction as the events, so a cold
 * load folds at most this many events after the snapshot. In a long log a
 * wallet's events are scattered, one page read each: with 1000, the first
 * 10 s on a 10M-event log (1000 wallets, all cold) ran at 11.7k ops/s,
 * with 100 at 15.1k; on a fresh log the two are within noise (bench/ab). */
#define WX_SNAPSHOT_EVERY_DEFAULT 100

/* Events folded for one aggregate load; a stream longer than this needs a
 * snapshot, and a load past it is an error rather than an endless read. */
#define WX_STREAM_EVENTS_FOLD_MAX (10 * 1000 * 1000)

/* Read connections the SQLite backend opens for HTTP threads. */
#define WX_SQLITE_READERS_MAX 8

/* WAL frames (pages) after which the background checkpointer copies them
 * into events.db; SQLite's own default for its inline checkpoints. */
#define WX_SQLITE_CHECKPOINT_FRAMES 1000

/* The WAL file is cut back to this size when it restarts after a spike
 * (under sustained load it stays around 40 MB with background checkpoints).
 * A plain integer: it is pasted into a PRAGMA. */
#define WX_SQLITE_WAL_BYTES_MAX 67108864

/* The SQLite store's stream index (store/streamindex.h) is flushed every
 * FLUSH_MS, or sooner once the unindexed tail reaches FLUSH_EVENTS_MIN
 * (the writer holds the tail in memory, and another process scans it). A
 * hot stream's index page is written once per flush instead of once per
 * commit: 200 ms (about 8,000 events under the mixed load) beat 50 ms by
 * 12-14% (bench/ab). One flush transaction indexes at
 * most FLUSH_EVENTS_MAX events and one wake-up at most ROUNDS_MAX of them;
 * catching up at open goes CATCH_UP_EVENTS at a time. Past TAIL_MAX
 * unindexed events commits wait for the index, and after STALL_MS_MAX
 * without it catching up (it is failing) they are refused. */
#define WX_STREAM_INDEX_FLUSH_MS 200
#define WX_STREAM_INDEX_FLUSH_EVENTS_MIN 16384
#define WX_STREAM_INDEX_FLUSH_EVENTS_MAX 65536
#define WX_STREAM_INDEX_ROUNDS_MAX 64
#define WX_STREAM_INDEX_CATCH_UP_EVENTS 200000
#define WX_STREAM_INDEX_TAIL_MAX 1000000
#define WX_STREAM_INDEX_BACKOFF_MS_MAX 5000
#define WX_STREAM_INDEX_STALL_MS_MAX 5000

/* The writer remembers the version of the streams it has appended to or
 * looked up, so an append to a known stream reads nothing: without it each
 * one was a read transaction on index.db (two fcntl locks and a B-tree
 * probe) inside the serial commit. Two generations of at most this many
 * streams each: when the young one fills, the old one is dropped, so a
 * stream used in the last generation stays known. About 64 bytes each. */
#define WX_STORE_VERSIONS_MAX (128 * 1024)

/* PostgreSQL read connections one node opens for HTTP threads, the
 * projector and the tools (the writer has its own). The HTTP layer runs
 * WX_HTTP_THREADS_DEFAULT threads and the projector one; 8 leaves room
 * for queries that wait on each other without holding up the server's
 * max_connections (100 by default) when several nodes share it. */
#define WX_PG_READERS_MAX 8

/* A query waiting for a free read connection gives up after this. */
#define WX_PG_POOL_WAIT_MS_MAX 5000

/* Connecting to PostgreSQL: libpq's connect_timeout (a URL's own value
 * wins). Short, because the writer connects inline and every queued
 * command waits on it. */
#define WX_PG_CONNECT_TIMEOUT_S 2

/* After a failed connection attempt, the next one waits this long,
 * doubling up to the maximum; meanwhile calls fail at once (503 with
 * Retry-After) instead of each waiting for a timeout. */
#define WX_PG_RECONNECT_MS_MIN 100
#define WX_PG_RECONNECT_MS_MAX 5000

/* A statement running longer is cancelled by the server
 * (statement_timeout): a commit stuck on a lock another node holds must
 * end in a 503, not hold the writer forever. */
#define WX_PG_STATEMENT_TIMEOUT_MS 30000

/* A commit chosen as a deadlock victim (two nodes inserting the same
 * stream versions and idempotency keys in opposite orders) is sent again
 * this many times; the other transaction has finished by then. */
#define WX_PG_DEADLOCK_RETRIES_MAX 3

/* One statement of the read-model database after its dialect hooks are
 * written out (rm/rm.h); our longest (a ledger page over both tables) is
 * under 1 KiB. */
#define WX_RM_SQL_BYTES_MAX 8192

/* A table name of the read-model database with its set suffix, and the
 * NUL: PostgreSQL cuts identifiers at 63 bytes; ours are under 32. */
#define WX_RM_NAME_BYTES_MAX 64

/* Parameters of one read-model statement (?1 .. ?N): a ledger entry has
 * 13, a webhook delivery state 9. */
#define WX_RM_PARAMS_MAX 16

/* PostgreSQL read side: query connections one node opens (the HTTP
 * threads, the admin worker, the delivery thread), beside the projector's
 * and the delivery thread's writer connections. As many as the log's
 * readers (WX_PG_READERS_MAX), for the same reasons. */
#define WX_PG_READ_MODEL_READERS_MAX 8

/* Statements a write transaction sends to PostgreSQL before it reads
 * their answers (pipelining, rm/postgres.c): each answer is a few dozen
 * bytes, and past some hundred KB unread the server would stop reading
 * while we are still sending (libpq's pipeline deadlock). 1000 answers
 * are about 30 KB; a projector batch of 2000 events (5000 statements)
 * then costs six round trips instead of 5000. */
#define WX_PG_PIPELINE_PENDING_MAX 1000

/* Rows of an RM_ROWS statement (rm/rm.h) PostgreSQL gets in one INSERT:
 * a ledger entry costs about 25 us as a statement of its own, most of it
 * the statement's fixed price, and a few us as one row of 64. 64 rows of
 * WX_RM_PARAMS_MAX parameters stay far under the protocol's 65535. A
 * statement keeps at most this many rows' parameters waiting. */
#define WX_RM_ROWS_PER_STATEMENT 64

/* Prepared statements a read-model connection finalized outside a write
 * transaction and deallocates at the start of the next (rm/postgres.c):
 * a set swap finalizes a consumer's statements, at most
 * WX_CONSUMER_STMTS_MAX; past this many they stay on the server until
 * the session ends. */
#define WX_RM_DEALLOCS_MAX 64

/* Named leases one read-model connection holds at once: every consumer of
 * the projector, and room. */
#define WX_RM_LEASES_MAX 40

/* How long the writer waits, after a files change that did not commit, for
 * the shared log to be readable up to its tail (the last committed event)
 * before it folds the tree index again (a projection's open transaction
 * holds it back for milliseconds); past it the command is 503, retry. */
#define WX_FILES_FOLD_WAIT_MS 1000

/* How long a SQLite connection waits on a lock before failing. */
#define WX_SQLITE_BUSY_TIMEOUT_MS 5000

/* Per-request arena chunk; most requests fit in one. */
#define WX_ARENA_CHUNK_BYTES 4096

/* HTTP server threads. DESIGN.md found one thread best for a hello-world;
 * here queries read SQLite on these threads. On our own HTTP layer the mixed
 * workload at 64 connections is the same with one or two (32.3-33.0k ops/s
 * either way: bench/ab --runs 3 t1=build/wallex,--http-threads,1
 * t2=build/wallex), but /healthz runs 156-168k req/s with two against 110k
 * with one (wrk -t2 -c64), and a slow query on one thread does not hold up
 * every other connection. */
#define WX_HTTP_THREADS_DEFAULT 2
#define WX_HTTP_THREADS_MAX 64

/* Simultaneous connections, and how long an idle one may stay open. */
#define WX_HTTP_CONNECTIONS_MAX 32768
#define WX_HTTP_CONNECTION_TIMEOUT_S 30

/* A request's head must be in within HEAD_TIMEOUT of its first byte, its
 * body within BODY_TIMEOUT of the head's end (64 KiB in 20 s is 3.3 KB/s;
 * our bodies are under 1 KiB), or it is answered 408 and the connection
 * closed. Received bytes do not extend them: a client sending one byte a
 * second (slowloris) got unbounded time when each byte reset the idle
 * timeout. Configurable (--head-timeout-ms, --body-timeout-ms). */
#define WX_HTTP_HEAD_TIMEOUT_MS_DEFAULT 10000
#define WX_HTTP_BODY_TIMEOUT_MS_DEFAULT 20000

/* An answer that makes no progress (the client reads nothing) for this
 * long closes its connection, freeing what it holds (--send-timeout-ms). */
#define WX_HTTP_SEND_TIMEOUT_MS_DEFAULT 10000

/* A request still arriving after this long is stalled: past
 * --connections-max a new connection closes its thread's oldest stalled
 * one to make room, so slow clients cannot lock well-behaved ones out.
 * Long enough that a request a real client is sending is never taken. */
#define WX_HTTP_STALLED_MS 1000

/* Answer bytes queued and not yet taken by clients, across all
 * connections (each HTTP thread holds its share). Past it a GET answer
 * larger than OUT_SMALL_BYTES is refused (503 overloaded, Retry-After)
 * instead of buffered: 300 clients asking for 6.5 MB pages and never
 * reading took RSS from 372 MB to 2.2 GB. Smaller answers always go out;
 * the kernel's socket buffer takes them whole, so they queue nothing. */
#define WX_HTTP_OUT_BYTES_MAX (64 * 1024 * 1024)
#define WX_HTTP_OUT_SMALL_BYTES (16 * 1024)

/* A request's line and headers, through the blank line. A connection
 * holds a read buffer only while a request is arriving or pipelined bytes
 * wait, so idle keep-alive connections cost no read buffer at all
 * (libmicrohttpd, before, kept one per open connection: 32 KiB of it
 * measured 579 MiB RSS at 18k connections). Our clients' heads are a few
 * hundred bytes. */
#define WX_HTTP_HEAD_BYTES_MAX (16 * 1024)
/* Header lines in one request (or trailer lines after a chunked body);
 * more is a 431. */
#define WX_HTTP_HEADERS_MAX 64
/* A chunk size's significant hex digits (8: up to 4 GiB, far past any body
 * we take; leading zeros do not count) and the length of a chunk-size line
 * with its zeros and extensions. */
#define WX_HTTP_CHUNK_SIZE_DIGITS_MAX 8
#define WX_HTTP_CHUNK_LINE_BYTES_MAX 256
/* A connection's read buffer starts this big when a request's first byte
 * arrives and doubles as more arrives, up to a head and the largest body
 * (84 KiB). Our clients' requests are a few hundred bytes; 84 KiB up front
 * cost 194 MB for 3,000 slow bodies and was not given back. */
#define WX_HTTP_IN_BYTES_MIN 2048
/* Read buffer bytes across all connections (each HTTP thread holds its
 * share). Past it the oldest stalled connections (WX_HTTP_STALLED_MS) are
 * closed to make room: 3,000 clients each sending 60 KB of a body and
 * stopping held 200 MB until their body deadline. Requests still moving
 * are never closed for it. */
#define WX_HTTP_IN_BYTES_MAX (64 * 1024 * 1024)
/* After an HTTP thread has freed this many buffer bytes, malloc is asked
 * to give free pages back (malloc_trim), at most once every TRIM_MS: its
 * heaps kept 100 MB after 3,000 slow clients were closed. */
#define WX_HTTP_TRIM_BYTES (16 * 1024 * 1024)
#define WX_HTTP_TRIM_MS 1000
/* Read buffers of the starting size an HTTP thread keeps for its next
 * requests instead of freeing them. */
#define WX_HTTP_SPARE_BUFFERS 16
/* An idle connection keeps its answer buffer up to this size. */
#define WX_HTTP_KEPT_OUT_BYTES 2048
/* Connections one wakeup accepts before serving the others. */
#define WX_HTTP_ACCEPTS_PER_WAKE 64
/* The listening socket's backlog (the kernel caps it at somaxconn). */
#define WX_HTTP_LISTEN_BACKLOG 4096
/* A connection's turn on its thread: steps of reading, parsing and
 * answering (a request takes two or three), and bytes drained from a
 * lingering close. Past it, the connection waits for the others. */
#define WX_HTTP_TURN_STEPS 64
#define WX_HTTP_TURN_BYTES (64 * 1024)
/* Events one epoll_wait hands an HTTP thread. */
#define WX_HTTP_EVENTS_BATCH 256
/* How often an HTTP thread looks for idle connections to close. */
#define WX_HTTP_TICK_MS 250
/* After an answer that closes the connection, what the client still sends
 * is read and dropped this long, so a close with unread bytes does not
 * reset the connection before the client has read the answer. */
#define WX_HTTP_LINGER_MS 2000
/* With no file descriptors left, accepting pauses this long. */
#define WX_HTTP_ACCEPT_PAUSE_MS 100

/* Connections accepted past the limit only to be told 503 overloaded and
 * closed; beyond these, accepting pauses and new connections wait in the
 * kernel's backlog. */
#define WX_HTTP_CONNECTIONS_SPARE 256

/* Components the writer wakes after each commit (the projector, the event
 * bus, and room). */
#define WX_COMMIT_LISTENERS_MAX 4

/* SIGTERM: how long in-flight requests get to finish before we exit. */
#define WX_SHUTDOWN_GRACE_MS 10000

/* Currency codes are three capital letters (ISO 4217). */
#define WX_CURRENCY_BYTES 3

/* Events one projection transaction applies. Big enough to amortise the
 * commit, small enough that read-your-writes waits stay short. */
#define WX_PROJECTOR_BATCH_EVENTS_MAX 2000

/* A consumer that read a full batch is behind: it reads this many next, so
 * a rebuild or a restart after downtime writes far fewer, larger
 * transactions (measured: 1M-event rebuild 39k events/s with 2000-event
 * transactions; see docs/architecture.md for the figure with this bound). */
#define WX_PROJECTOR_CATCHUP_EVENTS_MAX 50000

/* Read models (consumers) one projector runs, over every domain. */
#define WX_PROJECTOR_CONSUMERS_MAX 32

/* Prepared statements one consumer may use (each handle keeps this many
 * pointers): the files consumer writes four tables that change together
 * and uses 30. */
#define WX_CONSUMER_STMTS_MAX 32

/* A one-aggregate rebuild that lost to another node's projector (deadlock,
 * a set swapped away) is run again: this many tries in all, the n-th
 * after n times this wait. It runs on the admin worker, never on an HTTP
 * thread. */
#define WX_PROJECTOR_JOB_TRIES 4
#define WX_PROJECTOR_JOB_RETRY_MS 20

/* Retry of a failed projection: first wait, doubling up to the maximum. */
#define WX_PROJECTOR_RETRY_MS_MIN 100
#define WX_PROJECTOR_RETRY_MS_MAX 10000

/* After a pass that caught up with the log, the projector waits this long
 * before the next, so steady load is projected in fewer, larger
 * transactions instead of one per writer batch. It bounds the lag it adds;
 * measured in docs/architecture.md. */
#define WX_PROJECTOR_COALESCE_MS 5

/* A consumer that stages rows (the ledger's tail) folds them into their
 * final table once this many are staged or this long after its last fold,
 * in the transaction of a batch: a hot wallet's ledger page is then written
 * once per fold instead of once per projector commit. Reads see staged rows
 * too, so these bound only the staging table's size and the fold's cost.
 * Measured (bench/ab, mixed, 64 connections, two runs each): a fold every
 * 50 ms 17.5-18.3k ops/s, every 200 ms 19.3-20.8k, every 500 ms 20.4-21.9k
 * (and the shortest projection delay: the fewer folds, the fewer stalls). */
#define WX_PROJECTOR_FOLD_ROWS 32768
#define WX_PROJECTOR_FOLD_MS 500

/* How long the projector sleeps when the log has nothing new and nobody
 * woke it (the writer wakes it after every commit). */
#define WX_PROJECTOR_IDLE_MS 200

/* Several nodes on one PostgreSQL read side (proj/projector.c). Every
 * LEASE_MS a node tries to take the leases of consumers no node projects
 * (their holder died or stopped) and reads every checkpoint: this bounds
 * how long a dead node's consumers stand still once PostgreSQL has ended
 * its sessions (at once for a killed process), and how soon a rebuild
 * asked for on another node starts. SHARED_POLL_MS is how often a node
 * that projects something looks at the log head for what other nodes
 * committed (their commits do not wake it), and how often a node follows
 * the checkpoints while X-Min-Position waiters wait: it bounds the lag
 * those add. Each look is one indexed query (measured in
 * docs/architecture.md). */
#define WX_PROJECTOR_LEASE_MS 250
#define WX_PROJECTOR_SHARED_POLL_MS 10

/* X-Min-Position: default and largest wait for the read side. */
#define WX_MIN_POSITION_WAIT_MS_DEFAULT 2000
#define WX_MIN_POSITION_WAIT_MS_MAX 60000

/* Requests waiting for the read side (X-Min-Position) at once; past it a
 * request is answered 503 overloaded. Each is a parked connection costing
 * no thread, but the projector checks every one after each commit, so
 * they are bounded to keep that check a few microseconds. */
#define WX_PROJECTOR_WATCHES_MAX 4096

/* Admin work that runs off the HTTP threads (drift over the whole log, one
 * aggregate's rebuild, starting a projection's rebuild) waits in the
 * admin worker's queue; past this many a request is 503 overloaded with
 * Retry-After (API.md, Operations). Each such job takes from milliseconds
 * to seconds on a large log, so a deeper queue only makes callers wait
 * longer for an answer. */
#define WX_ADMIN_QUEUE_MAX 16

/* Differences one drift report lists; the count covers all of them. */
#define WX_DRIFT_REPORT_MAX 100

/* wallex verify on a shared read side: read models another node projects
 * are waited for this long to reach the log's head (a node catching up
 * after downtime projects some 20k-100k events/s here). */
#define WX_TOOL_AWAIT_MS 60000

/* Events read from the log in one go by drift, verify and offline tools. */
#define WX_SCAN_BATCH_EVENTS_MAX 10000

/* wallex migrate copies the log this many events per target commit: big
 * enough that the commit's fixed cost (a round trip, a WAL flush) is
 * spread thin, small enough that an interrupted copy loses little and one
 * page stays a few MB in memory. */
#define WX_MIGRATE_PAGE_EVENTS 10000

/* The migration's progress bar: its width, and how often it is redrawn. */
#define WX_MIGRATE_BAR_CHARS 30
#define WX_MIGRATE_PROGRESS_MS 200

/* Length of a projection failure message kept for /admin/projections. */
#define WX_ERROR_TEXT_BYTES 256

#endif
