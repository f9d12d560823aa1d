#pragma once
// The Dataspace Protocol 2025-1 transfer process messages as plain values, and their JSON codecs
// in the compact JSON-LD shape of the DSP 2025-1 schemas, read as plain JSON: "@context" names
// https://w3id.org/dspace/2025/1/context.jsonld, "@type" has no prefix. Readers return an error
// naming the field (`dataAddress.endpointType: missing`); they never throw. Pure functions.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"
#include "protocol/dsp.h"
#include "protocol/transfer.h"

namespace dsx::protocol {

// One transport-specific setting of a data address, such as "authorization" (an opaque token
// the client presents) or "authType" ("bearer").
struct EndpointProperty {
  std::string name;
  std::string value;
  bool operator==(const EndpointProperty&) const = default;
};

// Where and how to reach the data: the consumer's endpoint for a push transfer (in the request),
// the provider's for a pull transfer (in the start message).
struct DataAddress {
  std::string endpoint_type;  // names the transport, e.g. "https://w3id.org/idsa/v4.1/HTTP"
  std::optional<std::string> endpoint;                // the transport's address, when it has one
  std::vector<EndpointProperty> endpoint_properties;  // empty: absent
  bool operator==(const DataAddress&) const = default;
};

// Consumer -> provider: start a transfer process under an agreement.
struct TransferRequestMessage {
  std::string consumer_pid;
  std::string agreement_id;
  std::string format;                       // a format of the dataset's distributions
  std::optional<DataAddress> data_address;  // only for a push transfer
  std::string callback_address;             // where the provider sends its messages
  bool operator==(const TransferRequestMessage&) const = default;
};

// Provider -> consumer: the transfer started; consumer -> provider: restart a suspended one.
struct TransferStartMessage {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<DataAddress> data_address;  // for a pull transfer: where to fetch the data
  bool operator==(const TransferStartMessage&) const = default;
};

// Either party pauses the transfer; code and reasons are optional.
struct TransferSuspensionMessage {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<std::string> code;
  std::vector<nlohmann::json> reason;  // empty: absent (when present it holds at least one)
  bool operator==(const TransferSuspensionMessage&) const = default;
};

// Either party declares the transfer done.
struct TransferCompletionMessage {
  std::string provider_pid;
  std::string consumer_pid;
  bool operator==(const TransferCompletionMessage&) const = default;
};

// Either party ends the transfer; code and reasons are optional.
struct TransferTerminationMessage {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<std::string> code;
  std::vector<nlohmann::json> reason;  // empty: absent
  bool operator==(const TransferTerminationMessage&) const = default;
};

// The transfer process as GET /transfers/{pid} returns it, and the ACK body of every message.
struct TransferProcess {
  std::string provider_pid;
  std::string consumer_pid;
  TransferState state = TransferState::kRequested;
  bool operator==(const TransferProcess&) const = default;
};

// The error body of a refused message (4xx). It causes no transition.
struct TransferError {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<std::string> code;
  std::vector<nlohmann::json> reason;  // empty: absent
  bool operator==(const TransferError&) const = default;
};

// The five messages that drive the state machine, in TransferMessageKind order.
using TransferMessage =
    std::variant<TransferRequestMessage, TransferStartMessage, TransferSuspensionMessage,
                 TransferCompletionMessage, TransferTerminationMessage>;

// The machine's input for a message.
TransferMessageKind kind_of(const TransferMessage& message);

// Readers: the document as the JSON value the transport parsed (common/json.h's parse_json_text
// for untrusted text). Unknown members are ignored, as JSON-LD allows.
Result<TransferRequestMessage> parse_transfer_request_message(const nlohmann::json& doc);
Result<TransferStartMessage> parse_transfer_start_message(const nlohmann::json& doc);
Result<TransferSuspensionMessage> parse_transfer_suspension_message(const nlohmann::json& doc);
Result<TransferCompletionMessage> parse_transfer_completion_message(const nlohmann::json& doc);
Result<TransferTerminationMessage> parse_transfer_termination_message(const nlohmann::json& doc);
Result<TransferProcess> parse_transfer_process(const nlohmann::json& doc);
Result<TransferError> parse_transfer_error(const nlohmann::json& doc);
// Any of the five messages, chosen by its "@type".
Result<TransferMessage> parse_transfer_message(const nlohmann::json& doc);

// Writers: the compact shape with "@context" and "@type". They write what the value holds and
// check nothing; a value the readers accepted writes back to an equal value.
nlohmann::json to_json(const DataAddress& a);  // the "dataAddress" member, with its "@type"
nlohmann::json to_json(const TransferRequestMessage& m);
nlohmann::json to_json(const TransferStartMessage& m);
nlohmann::json to_json(const TransferSuspensionMessage& m);
nlohmann::json to_json(const TransferCompletionMessage& m);
nlohmann::json to_json(const TransferTerminationMessage& m);
nlohmann::json to_json(const TransferProcess& m);
nlohmann::json to_json(const TransferError& m);
nlohmann::json to_json(const TransferMessage& m);

}  // namespace dsx::protocol
