/*
 * Software keys forward (forward.c): the algorithms whose mode runs in
 * software are served by the default provider's own functions, one inner
 * context per kcapi-aio context, behind kcapi-aio's cheap argument checks.
 */
#ifndef KCAPI_AIO_FORWARD_H
#define KCAPI_AIO_FORWARD_H

#include "cipher.h"

int ka_fwd_new(KA_PROV *p);
void ka_fwd_free(KA_PROV *p);

/*
 * The provider's cipher table: ours, where an algorithm's mode runs in
 * software (ka_backend_choice) with its forwarding dispatch table in place.
 * Decided once per provider, at the first query.
 */
const OSSL_ALGORITHM *ka_fwd_algorithms(KA_PROV *p, const OSSL_ALGORITHM *ours);

#endif
