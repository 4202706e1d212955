/* store_contract.h — the store conformance suite: what every backend must do, written only
 * against durabletask/store.h. A backend's test file supplies a factory and runs the suite. */
#ifndef DT_STORE_CONTRACT_H
#define DT_STORE_CONTRACT_H

#include <stdbool.h>

#include "durabletask/store.h"

/* A factory: open (creating if needed) the backend's store kept in DIR. Opening the same DIR
 * again must give the same data (the persistence tests close and reopen). */
typedef dt_status (*store_contract_open_fn)(const char *dir, dt_store **out, dt_error *err);

/* store_contract_run: run every contract test against the stores OPEN makes, as a cmocka
 * group named after BACKEND. Returns the number of failed tests. */
int store_contract_run(const char *backend, store_contract_open_fn open);

#endif
