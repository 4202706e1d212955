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
 * (which count only commits whose frames are written) never miss a byte. The bytes and
 * their offsets are the same as SQLite's, in the same order. */
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

typedef struct wal_file {
    sqlite3_file base;          /* methods: ours */
    sqlite3_file *real;         /* the default VFS's file, right after this struct */
    size_t held;                /* bytes waiting in buf */
    bool after_read;            /* the last call was a read */
    bool commit_frame;          /* the last header held was a commit frame's */
    sqlite3_int64 held_at;      /* where buf's first byte goes */
    unsigned char *buf;         /* HOLD_MAX bytes, made at the first held header */
} wal_file;

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

/* vfs_open: the default VFS opens every file; a WAL file gets our methods around it. */
static int vfs_open(sqlite3_vfs *self, sqlite3_filename name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)self;
    if (!(flags & SQLITE_OPEN_WAL))
        return base_vfs->xOpen((sqlite3_vfs *)base_vfs, name, file, flags, out_flags);
    wal_file *f = (wal_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = base_vfs->xOpen((sqlite3_vfs *)base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        /* SQLite closes a file whose open failed if its methods are set: the real one's */
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    f->base.pMethods = &wal_methods;
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
    vfs.szOsFile = (int)sizeof(wal_file) + base_vfs->szOsFile;
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
