// JSON codecs for the DSP 2025-1 transfer process messages.
//
// The shapes follow the 2025-1 JSON schemas (ids https://w3id.org/dspace/2025/1/transfer/
// *-schema.json, in artifacts/src/main/resources/transfer/ of github.com/
// eclipse-dataspace-protocol-base/DataspaceProtocol), their examples, and the text of "Transfer
// Process Protocol". As for negotiations (negotiation_messages.cpp), where they differ we accept
// what any of them documents and write the most common form. The readings, also listed in
// docs/architecture.md, besides R1, R9 and R10 of protocol/dsp_json.h, which hold here too:
//
//  T1 TransferRequestMessage: consumerPid, agreementId, format and callbackAddress are required
//     (schema) and non-empty (R10: an empty agreement id or format names nothing). The message
//     has no providerPid: the provider chooses it.
//  T2 callbackAddress "MUST be a URI" the provider understands, or it "MUST return an
//     unrecoverable error" (text). Which schemes it understands is the broker's business; the
//     reader checks a non-empty string.
//  T3 dataAddress: the schema requires "@type": "DataAddress", endpointType and endpoint; the
//     text says a data address "MAY include an endpoint ... depending on the endpointType". We
//     require "@type" and a non-empty endpointType, and take endpoint as optional (non-empty when
//     present). endpointProperties, when present, is an array of at least one
//     {"@type": "EndpointProperty", "name", "value"} (schema, all three required); the name is
//     non-empty, the value any string.
//  T4 Whether a dataAddress must be there depends on the transfer type of the format: "MUST
//     only be provided if the format REQUIRES a push transfer" (request) and "MUST be provided if
//     the current transfer is a pull transfer" (start). The reader does not know the format's
//     type; the broker, which knows dsx's formats, checks it. A restart sent by the consumer
//     (transfer.cpp, S1) carries none in practice; that too is the broker's check, since the
//     reader does not know the sender.
//  T5 TransferSuspensionMessage, TransferTerminationMessage and TransferError share the
//     schemas' AbstractTransferCodeMessage: both pids, an optional string code and an optional
//     reason (R9). TransferError's pids are required but may be empty (R10).
//  T6 TransferProcess.state is one of REQUESTED, STARTED, SUSPENDED, COMPLETED, TERMINATED (the
//     2025-1 enum); the 2024-1 spelling "dspace:STARTED" is refused like any other value.

#include "protocol/transfer_messages.h"

#include <utility>

#include "protocol/dsp_json.h"

namespace dsx::protocol {
namespace {

using json = nlohmann::json;
using namespace detail;

// One entry of dataAddress.endpointProperties (T3).
Status read_endpoint_property(const json& v, const std::string& path, EndpointProperty& out) {
  if (!v.is_object()) return wrong_type(path, "an object", v);
  Fields f(v, path + ".");
  Status s = f.type("EndpointProperty", true);
  if (s) s = f.id("name", out.name);
  if (s) s = f.string("value", out.value);
  return s;
}

// The optional "dataAddress" member (T3, T4).
Status read_data_address(const Fields& doc, std::optional<DataAddress>& out) {
  out.reset();
  const json* v = doc.find("dataAddress");
  if (!v) return Status::ok();
  if (!v->is_object()) return wrong_type("dataAddress", "an object", *v);
  Fields f(*v, "dataAddress.");
  DataAddress a;
  Status s = f.type("DataAddress", true);
  if (s) s = f.id("endpointType", a.endpoint_type);
  if (s) s = f.optional_id("endpoint", a.endpoint);
  if (!s) return s;
  if (const json* props = f.find("endpointProperties")) {
    if (!props->is_array()) return wrong_type("dataAddress.endpointProperties", "an array", *props);
    if (props->empty())
      return bad("dataAddress.endpointProperties", "must hold at least one item when present");
    for (size_t i = 0; i < props->size(); ++i) {
      std::string path = "dataAddress.endpointProperties[" + std::to_string(i) + "]";
      EndpointProperty p;
      if (Status ps = read_endpoint_property((*props)[i], path, p); !ps) return ps;
      a.endpoint_properties.push_back(std::move(p));
    }
  }
  out = std::move(a);
  return Status::ok();
}

Result<TransferRequestMessage> read_request(const json& doc) {
  if (Status s = check_envelope(doc, "TransferRequestMessage"); !s) return s;
  Fields f(doc, "");
  TransferRequestMessage m;
  Status s = f.id("consumerPid", m.consumer_pid);  // T1
  if (s) s = f.id("agreementId", m.agreement_id);
  if (s) s = f.id("format", m.format);
  if (s) s = read_data_address(f, m.data_address);
  if (s) s = f.id("callbackAddress", m.callback_address);  // T2
  if (!s) return s;
  return m;
}

Result<TransferStartMessage> read_start(const json& doc) {
  if (Status s = check_envelope(doc, "TransferStartMessage"); !s) return s;
  Fields f(doc, "");
  TransferStartMessage m;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = read_data_address(f, m.data_address);
  if (!s) return s;
  return m;
}

Result<TransferSuspensionMessage> read_suspension(const json& doc) {
  return read_explained<TransferSuspensionMessage>(doc, "TransferSuspensionMessage");
}

Result<TransferCompletionMessage> read_completion(const json& doc) {
  return read_pids_message<TransferCompletionMessage>(doc, "TransferCompletionMessage");
}

Result<TransferTerminationMessage> read_termination(const json& doc) {
  return read_explained<TransferTerminationMessage>(doc, "TransferTerminationMessage");
}

Result<TransferProcess> read_process_doc(const json& doc) {
  return read_process<TransferProcess>(doc, "TransferProcess", parse_transfer_state,
                                       "a transfer process state");  // T6
}

Result<TransferError> read_error(const json& doc) {
  return read_explained<TransferError>(doc, "TransferError", /*error_body=*/true);
}

template <typename T>
Result<TransferMessage> as_message(Result<T> r) {
  return as_variant<TransferMessage>(std::move(r));
}

void put(json& j, const std::optional<DataAddress>& a) {
  if (a) j["dataAddress"] = to_json(*a);
}

}  // namespace

TransferMessageKind kind_of(const TransferMessage& message) {
  static_assert(std::variant_size_v<TransferMessage> == kTransferMessageKinds.size());
  return kTransferMessageKinds[message.index()];
}

Result<TransferRequestMessage> parse_transfer_request_message(const json& doc) {
  return guarded("TransferRequestMessage", read_request, doc);
}
Result<TransferStartMessage> parse_transfer_start_message(const json& doc) {
  return guarded("TransferStartMessage", read_start, doc);
}
Result<TransferSuspensionMessage> parse_transfer_suspension_message(const json& doc) {
  return guarded("TransferSuspensionMessage", read_suspension, doc);
}
Result<TransferCompletionMessage> parse_transfer_completion_message(const json& doc) {
  return guarded("TransferCompletionMessage", read_completion, doc);
}
Result<TransferTerminationMessage> parse_transfer_termination_message(const json& doc) {
  return guarded("TransferTerminationMessage", read_termination, doc);
}
Result<TransferProcess> parse_transfer_process(const json& doc) {
  return guarded("TransferProcess", read_process_doc, doc);
}
Result<TransferError> parse_transfer_error(const json& doc) {
  return guarded("TransferError", read_error, doc);
}

Result<TransferMessage> parse_transfer_message(const json& doc) {
  Result<std::string> t = message_type(doc, "a transfer process message");
  if (!t) return t.status();
  const std::string& type = *t;
  if (type == "TransferRequestMessage") return as_message(parse_transfer_request_message(doc));
  if (type == "TransferStartMessage") return as_message(parse_transfer_start_message(doc));
  if (type == "TransferSuspensionMessage")
    return as_message(parse_transfer_suspension_message(doc));
  if (type == "TransferCompletionMessage")
    return as_message(parse_transfer_completion_message(doc));
  if (type == "TransferTerminationMessage")
    return as_message(parse_transfer_termination_message(doc));
  return bad("@type", quote(type) + " is not a transfer process message");
}

json to_json(const DataAddress& a) {
  json j = {{"@type", "DataAddress"}, {"endpointType", a.endpoint_type}};
  if (a.endpoint) j["endpoint"] = *a.endpoint;
  if (!a.endpoint_properties.empty()) {
    json props = json::array();
    for (const EndpointProperty& p : a.endpoint_properties)
      props.push_back({{"@type", "EndpointProperty"}, {"name", p.name}, {"value", p.value}});
    j["endpointProperties"] = std::move(props);
  }
  return j;
}

json to_json(const TransferRequestMessage& m) {
  json j = envelope("TransferRequestMessage");
  j["consumerPid"] = m.consumer_pid;
  j["agreementId"] = m.agreement_id;
  j["format"] = m.format;
  put(j, m.data_address);
  j["callbackAddress"] = m.callback_address;
  return j;
}

json to_json(const TransferStartMessage& m) {
  json j = envelope("TransferStartMessage", m.provider_pid, m.consumer_pid);
  put(j, m.data_address);
  return j;
}

json to_json(const TransferSuspensionMessage& m) {
  return write_explained("TransferSuspensionMessage", m);
}

json to_json(const TransferCompletionMessage& m) {
  return envelope("TransferCompletionMessage", m.provider_pid, m.consumer_pid);
}

json to_json(const TransferTerminationMessage& m) {
  return write_explained("TransferTerminationMessage", m);
}

json to_json(const TransferProcess& m) {
  return write_process("TransferProcess", m);
}

json to_json(const TransferError& m) {
  return write_explained("TransferError", m);
}

json to_json(const TransferMessage& m) {
  return std::visit([](const auto& message) { return to_json(message); }, m);
}

}  // namespace dsx::protocol
