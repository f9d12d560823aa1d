#pragma once
// The log as W3C PROV-O, in JSON-LD (https://www.w3.org/TR/prov-o/), for auditors' tools:
// participants are prov:Agents; datasets, offers, agreements and receipts are prov:Entities;
// negotiations and transfers are prov:Activities; and every log entry is itself a
// prov:Activity (an event: a decision, a publication, a signature) associated with its actor,
// at its time, that used its subjects, generated what it created, and was informed by the
// negotiation or transfer it belongs to. Reads the file only; pure otherwise.

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace dsx::provenance {

Result<nlohmann::json> export_prov(const std::string& db_path);

}  // namespace dsx::provenance
