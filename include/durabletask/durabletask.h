/* durabletask/durabletask.h — the whole user-facing API in one include: the data model
 * (core.h), the engine and its store (hub.h, store.h), managing instances (client.h), writing
 * orchestrators and activities (sdk.h) and running them remotely (remote.h), serving a hub
 * over the Durable Task gRPC protocol and HTTP (grpc.h, http.h), calling such a server
 * (grpc_client.h), and durable HTTP calls from orchestrations (httpcall.h).
 *
 *     #include <durabletask/durabletask.h>
 *     cc app.c $(pkg-config --cflags --libs durabletask)
 */
#ifndef DURABLETASK_DURABLETASK_H
#define DURABLETASK_DURABLETASK_H

/* The version of this API, as MAJOR.MINOR.PATCH (the build and durabletask.pc read it from
 * here). DT_VERSION_NUMBER orders versions: 1.2.3 is 10203. */
#define DT_VERSION_MAJOR 0
#define DT_VERSION_MINOR 12
#define DT_VERSION_PATCH 0
#define DT_VERSION "0.12.0"
#define DT_VERSION_NUMBER (DT_VERSION_MAJOR * 10000 + DT_VERSION_MINOR * 100 + DT_VERSION_PATCH)

#include "durabletask/core.h"
#include "durabletask/codec.h"
#include "durabletask/store.h"
#include "durabletask/hub.h"
#include "durabletask/client.h"
#include "durabletask/sdk.h"
#include "durabletask/remote.h"
#include "durabletask/grpc.h"
#include "durabletask/grpc_client.h"
#include "durabletask/http.h"
#include "durabletask/httpcall.h"

#endif
