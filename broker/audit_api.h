#pragma once
// The auditor API over the provenance log (roles auditor and operator): the latest signed
// checkpoint, the log's public key, entries by range and filter, inclusion and consistency
// proofs in the JSON form of ../shared/spec/audit-proof.md, so that `dsx audit proof --broker`
// output pipes into `dsx audit verify-proof`. Routes only; the Log does the work (thread-safe).

#include "broker/router.h"
#include "provenance/log.h"

namespace dsx::broker {

void add_audit_routes(Router& router, const provenance::Log& log);

}  // namespace dsx::broker
