/* sqlite_vfs.c — the store's SQLite VFS: the system's default VFS, except that the frames a
 * transaction appends to the write-ahead log go to the kernel in one write, not two per
 * frame. SQLite writes a frame as its 24-byte header and then its page, one system call
 * each; a commit writes a frame per page it changed (dozens when the committer puts a batch
 * in one transaction), and on a virtual machine every system call is dear. A WAL file here
 * holds back what SQLite writes from a frame header on, as long as each write continues the
 * last, and sends it all in one call when the transaction's commit frame (the one whose
 * header gives the database's size) has its page, before SQLite publishes the commit in the
 * WAL index: readers, which see frames only through the index, never look at a held byte.
 * Anything else sends what is held first: a write elsewhere, a read (SQLite reading back a
 * frame it wrote, or rewriting checksums: read a frame, write its header, where no page
 * follows), a sync, a size. A header written right after a read is not held. The store
 * also sends anything held at the end of each of its transactions
 * (store_sqlite_vfs_flush), so nothing stays held between calls into SQLite and our fsyncs
 * (which count only commits whose frames are written) never miss a byte. What a transaction
 * that rolls back left held (frames it spilled before its commit) is dropped, unwritten, when
 * SQLite lets go of the WAL's write lock: written later, it could land on frames another
 * connection committed at the same offsets meanwhile. That lock is taken on the database
 * file's shared memory, so main database files are wrapped too, only to see it released.
 * The bytes and their offsets are the same as SQLite's, in the same order, but for frames of
 * rolled-back transactions, which nothing reads. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define VFS_NAME "durabletask"
#define HEADER_SIZE 24          /* a WAL frame's header */
/* bytes held at most; a bigger transaction sends in parts. The default VFS writes at most
 * 128 KB - 1 in one call: it masks a longer length to its low 17 bits. */
#define HOLD_MAX 0x1ffff

typedef struct db_file db_file;

typedef struct wal_file {
    sqlite3_file base;          /* methods: ours */
    sqlite3_file *real;         /* the default VFS's file, right after this struct */
    db_file *db;                /* its database's file, when that is ours */
    size_t held;                /* bytes waiting in buf */
    bool after_read;            /* the last call was a read */
    bool commit_frame;          /* the last header held was a commit frame's */
    sqlite3_int64 held_at;      /* where buf's first byte goes */
    unsigned char *buf;         /* HOLD_MAX bytes, made at the first held header */
} wal_file;

/* A main database file: the default VFS's, watched for the release of the WAL's write lock. */
struct db_file {
    sqlite3_file base;          /* methods: ours */
    sqlite3_file *real;         /* the default VFS's file, right after this struct */
    wal_file *wal;              /* its WAL file while that is open */
};

#define WAL_WRITE_LOCK 0        /* the shared-memory lock a writer holds (SQLite's wal.c) */

static sqlite3_vfs vfs;
static const sqlite3_vfs *base_vfs;

/* send_held: write what is held, in one call. */
static int send_held(wal_file *f)
{
    if (f->held == 0)
        return SQLITE_OK;
    int amt = (int)f->held;
    f->held = 0;
    return f->real->pMethods->xWrite(f->real, f->buf, amt, f->held_at);
}

/* is_commit_header: DATA (a frame header) names the database's size in pages after the
 * commit, which only a transaction's last frame does (zero in all others). */
static bool is_commit_header(const unsigned char *data)
{
    return (data[4] | data[5] | data[6] | data[7]) != 0;
}

static int wal_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 at)
{
    wal_file *f = (wal_file *)file;
    bool after_read = f->after_read;
    f->after_read = false;
    bool header = amt == HEADER_SIZE && !after_read;
    bool continues = f->held && at == f->held_at + (sqlite3_int64)f->held &&
                     (size_t)amt <= HOLD_MAX - f->held;
    if (!continues) {
        int rc = send_held(f);
        if (rc != SQLITE_OK)
            return rc;
        if (!header ||
            (f->buf == NULL && (f->buf = malloc(HOLD_MAX)) == NULL))
            return f->real->pMethods->xWrite(f->real, data, amt, at);
        f->held_at = at;
    }
    memcpy(f->buf + f->held, data, (size_t)amt);
    f->held += (size_t)amt;
    if (header)
        f->commit_frame = is_commit_header(data);
    else if (f->commit_frame)
        return send_held(f);   /* the commit frame is whole: out before SQLite publishes it */
    return SQLITE_OK;
}

static int wal_close(sqlite3_file *file)
{
    wal_file *f = (wal_file *)file;
    if (f->db)
        f->db->wal = NULL;
    int rc = send_held(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

/* Every other method sends what is held first, then passes the call on. */
#define PASS(call)                                                                             \
    wal_file *f = (wal_file *)file;                                                            \
    int rc = send_held(f);                                                                     \
    return rc != SQLITE_OK ? rc : f->real->pMethods->call

static int wal_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 at)
{
    ((wal_file *)file)->after_read = true;
    PASS(xRead(f->real, data, amt, at));
}
static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    PASS(xTruncate(f->real, size));
}
static int wal_sync(sqlite3_file *file, int flags)
{
    PASS(xSync(f->real, flags));
}
static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    PASS(xFileSize(f->real, size));
}
static int wal_lock(sqlite3_file *file, int level)
{
    PASS(xLock(f->real, level));
}
static int wal_unlock(sqlite3_file *file, int level)
{
    PASS(xUnlock(f->real, level));
}
static int wal_check_reserved(sqlite3_file *file, int *out)
{
    PASS(xCheckReservedLock(f->real, out));
}
static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    PASS(xFileControl(f->real, op, arg));
}
static int wal_sector_size(sqlite3_file *file)
{
    wal_file *f = (wal_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}
static int wal_device_characteristics(sqlite3_file *file)
{
    wal_file *f = (wal_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* version 1: a WAL file has no shared memory or memory maps of its own */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device_characteristics,
};

/* ---- main database files: every method passed on; the WAL's write lock watched ---------- */

#define REAL(file) (((db_file *)(file))->real)

static int db_close(sqlite3_file *file)
{
    db_file *d = (db_file *)file;
    if (d->wal)
        d->wal->db = NULL;
    return d->real->pMethods->xClose(d->real);
}
static int db_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 at)
{
    return REAL(file)->pMethods->xRead(REAL(file), data, amt, at);
}
static int db_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 at)
{
    return REAL(file)->pMethods->xWrite(REAL(file), data, amt, at);
}
static int db_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    return REAL(file)->pMethods->xTruncate(REAL(file), size);
}
static int db_sync(sqlite3_file *file, int flags)
{
    return REAL(file)->pMethods->xSync(REAL(file), flags);
}
static int db_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    return REAL(file)->pMethods->xFileSize(REAL(file), size);
}
static int db_lock(sqlite3_file *file, int level)
{
    return REAL(file)->pMethods->xLock(REAL(file), level);
}
static int db_unlock(sqlite3_file *file, int level)
{
    return REAL(file)->pMethods->xUnlock(REAL(file), level);
}
static int db_check_reserved(sqlite3_file *file, int *out)
{
    return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}
static int db_file_control(sqlite3_file *file, int op, void *arg)
{
    return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}
static int db_sector_size(sqlite3_file *file)
{
    return REAL(file)->pMethods->xSectorSize(REAL(file));
}
static int db_device_characteristics(sqlite3_file *file)
{
    return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}
static int db_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    return REAL(file)->pMethods->xShmMap(REAL(file), page, size, extend, out);
}

/* db_shm_lock: when the WAL's write lock is let go, the transaction that held it is over:
 * committed (its frames all went out before SQLite published it) or rolled back (what it
 * left held is dropped, never to be written). */
static int db_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    db_file *d = (db_file *)file;
    if (d->wal && offset == WAL_WRITE_LOCK && (flags & SQLITE_SHM_UNLOCK) &&
        (flags & SQLITE_SHM_EXCLUSIVE)) {
        d->wal->held = 0;
        d->wal->commit_frame = false;
    }
    return d->real->pMethods->xShmLock(d->real, offset, n, flags);
}
static void db_shm_barrier(sqlite3_file *file)
{
    REAL(file)->pMethods->xShmBarrier(REAL(file));
}
static int db_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}
static int db_fetch(sqlite3_file *file, sqlite3_int64 at, int amt, void **out)
{
    return REAL(file)->pMethods->xFetch(REAL(file), at, amt, out);
}
static int db_unfetch(sqlite3_file *file, sqlite3_int64 at, void *p)
{
    return REAL(file)->pMethods->xUnfetch(REAL(file), at, p);
}

/* version 3, as the default (unix) VFS's files are: shared memory and memory maps */
static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    .xClose = db_close,
    .xRead = db_read,
    .xWrite = db_write,
    .xTruncate = db_truncate,
    .xSync = db_sync,
    .xFileSize = db_file_size,
    .xLock = db_lock,
    .xUnlock = db_unlock,
    .xCheckReservedLock = db_check_reserved,
    .xFileControl = db_file_control,
    .xSectorSize = db_sector_size,
    .xDeviceCharacteristics = db_device_characteristics,
    .xShmMap = db_shm_map,
    .xShmLock = db_shm_lock,
    .xShmBarrier = db_shm_barrier,
    .xShmUnmap = db_shm_unmap,
    .xFetch = db_fetch,
    .xUnfetch = db_unfetch,
};

/* open_real: the default VFS's file NAME into REAL (right after our struct at FILE), and
 * METHODS (ours) on FILE; on failure, no methods on FILE. */
static int open_real(sqlite3_filename name, sqlite3_file *file, sqlite3_file *real, int flags,
                     int *out_flags, const sqlite3_io_methods *methods)
{
    int rc = base_vfs->xOpen((sqlite3_vfs *)base_vfs, name, real, flags, out_flags);
    if (rc == SQLITE_OK && real->pMethods->iVersion < methods->iVersion)
        rc = SQLITE_CANTOPEN;   /* not the default VFS we know: we would pass on what it lacks */
    if (rc != SQLITE_OK) {
        /* SQLite closes a file whose open failed if its methods are set: the real one's */
        if (real->pMethods)
            real->pMethods->xClose(real);
        file->pMethods = NULL;
        return rc;
    }
    file->pMethods = methods;
    return SQLITE_OK;
}

/* vfs_open: the default VFS opens every file; a WAL file and a main database file get our
 * methods around it, and the WAL is linked to its database's file. */
static int vfs_open(sqlite3_vfs *self, sqlite3_filename name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)self;
    if (flags & SQLITE_OPEN_MAIN_DB) {
        db_file *d = (db_file *)file;
        memset(d, 0, sizeof *d);
        d->real = (sqlite3_file *)(d + 1);
        return open_real(name, file, d->real, flags, out_flags, &db_methods);
    }
    if (!(flags & SQLITE_OPEN_WAL))
        return base_vfs->xOpen((sqlite3_vfs *)base_vfs, name, file, flags, out_flags);
    wal_file *f = (wal_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = open_real(name, file, f->real, flags, out_flags, &wal_methods);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_file *db = sqlite3_database_file_object(name);
    if (db && db->pMethods == &db_methods) {
        f->db = (db_file *)db;
        f->db->wal = f;
    }
    return SQLITE_OK;
}

static void vfs_register(void)
{
    /* Before SQLite initializes (this runs before the store's first open): no statistics of
     * its allocations. Kept, they put every sqlite3_malloc and sqlite3_free of every
     * connection behind one process-wide mutex, which the committer and the readers then
     * fight over (a tenth of the committer's time went to that lock and its wake-ups). If
     * the program initialized SQLite already, this is refused and changes nothing. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    base_vfs = sqlite3_vfs_find(NULL);
    if (base_vfs == NULL)
        return;
    vfs = *base_vfs;
    vfs.zName = VFS_NAME;
    size_t ours = sizeof(wal_file) > sizeof(db_file) ? sizeof(wal_file) : sizeof(db_file);
    vfs.szOsFile = (int)ours + base_vfs->szOsFile;
    vfs.xOpen = vfs_open;
    vfs.pNext = NULL;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK)
        base_vfs = NULL;
}

bool store_sqlite_vfs_flush(sqlite3 *db)
{
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK &&
        file && file->pMethods == &wal_methods)
        return send_held((wal_file *)file) == SQLITE_OK;
    return true;
}

const char *store_sqlite_vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, vfs_register);
    return base_vfs ? VFS_NAME : NULL;
}
