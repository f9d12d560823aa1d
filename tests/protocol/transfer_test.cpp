#include "protocol/transfer.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "protocol/transfer_messages.h"
#include "test_util.h"

using namespace dsx;
using namespace dsx::protocol;
using namespace dsx::protocol::testing;
using json = nlohmann::json;

namespace {

constexpr auto kNone = std::nullopt;
using S = TransferState;
using K = TransferMessageKind;
constexpr Role kC = Role::kConsumer;
constexpr Role kP = Role::kProvider;

// The transfer documents of the DSP 2025-1 examples (eclipse-dataspace-protocol-base/
// DataspaceProtocol, artifacts/src/main/resources/transfer/example/) with dsx's values: a push
// request (with the consumer's data address), a pull request (without), a start with the
// broker's relay endpoint, and the rest.
const char* kRequest = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferRequestMessage",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "agreementId": "urn:uuid:a9ee0000-0000-4000-8000-000000000005",
  "format": "dsx:HTTPS_PUSH",
  "dataAddress": {
    "@type": "DataAddress",
    "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
    "endpoint": "https://consumer.example/inbox",
    "endpointProperties": [
      {"@type": "EndpointProperty", "name": "authorization", "value": "TOKEN-1234"},
      {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}
    ]
  },
  "callbackAddress": "https://consumer.example/dsp"
})";

// A pull transfer's request: no dataAddress.
const char* kRequestPull = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferRequestMessage",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a2",
  "agreementId": "urn:uuid:a9ee0000-0000-4000-8000-000000000005",
  "format": "dsx:HTTPS_PULL",
  "callbackAddress": "https://consumer.example/dsp/"
})";

const char* kStart = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferStartMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "dataAddress": {
    "@type": "DataAddress",
    "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
    "endpoint": "https://broker.example/relay/0001",
    "endpointProperties": [{"@type": "EndpointProperty", "name": "authorization", "value": "T-56"}]
  }
})";

const char* kSuspension = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferSuspensionMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "code": "maintenance",
  "reason": ["The provider's store is being migrated."]
})";

const char* kCompletion = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferCompletionMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1"
})";

const char* kTermination = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferTerminationMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "code": "policy.refused",
  "reason": ["The agreement allows one use; it was used."]
})";

const char* kProcess = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferProcess",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "state": "STARTED"
})";

const char* kError = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "TransferError",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1",
  "code": "invalid.transition",
  "reason": ["The transfer process is COMPLETED."]
})";

const std::vector<DocKind>& doc_kinds() {
  static const std::vector<DocKind> kinds = {
      {"TransferRequestMessage", kRequest, checker(parse_transfer_request_message)},
      {"TransferStartMessage", kStart, checker(parse_transfer_start_message)},
      {"TransferSuspensionMessage", kSuspension, checker(parse_transfer_suspension_message)},
      {"TransferCompletionMessage", kCompletion, checker(parse_transfer_completion_message)},
      {"TransferTerminationMessage", kTermination, checker(parse_transfer_termination_message)},
      {"TransferProcess", kProcess, checker(parse_transfer_process)},
      {"TransferError", kError, checker(parse_transfer_error)},
  };
  return kinds;
}

void accepts(const char* type, const json& doc) {
  std::string why = refusal(find_kind(doc_kinds(), type).check, doc);
  INFO(doc.dump() << "\n" << why);
  CHECK(why.empty());
}

}  // namespace

TEST_CASE("transfer: the DSP 2025-1 example shapes parse and write back unchanged", "[protocol]") {
  auto request = parsed(parse_transfer_request_message, kRequest);
  CHECK(request.consumer_pid == "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1");
  CHECK(request.agreement_id == "urn:uuid:a9ee0000-0000-4000-8000-000000000005");
  CHECK(request.format == "dsx:HTTPS_PUSH");
  CHECK(request.callback_address == "https://consumer.example/dsp");
  REQUIRE(request.data_address);
  CHECK(request.data_address->endpoint_type == "https://w3id.org/idsa/v4.1/HTTP");
  CHECK(request.data_address->endpoint == "https://consumer.example/inbox");
  CHECK(request.data_address->endpoint_properties ==
        std::vector<EndpointProperty>{{"authorization", "TOKEN-1234"}, {"authType", "bearer"}});

  auto pull = parsed(parse_transfer_request_message, kRequestPull);
  CHECK_FALSE(pull.data_address);

  auto start = parsed(parse_transfer_start_message, kStart);
  CHECK(start.provider_pid == "urn:uuid:9a0b1de0-0000-4000-8000-0000000000b1");
  REQUIRE(start.data_address);
  CHECK(start.data_address->endpoint == "https://broker.example/relay/0001");

  auto suspension = parsed(parse_transfer_suspension_message, kSuspension);
  CHECK(suspension.code == "maintenance");
  CHECK(suspension.reason == std::vector<json>{"The provider's store is being migrated."});
  auto completion = parsed(parse_transfer_completion_message, kCompletion);
  CHECK(completion.consumer_pid == "urn:uuid:c0a5e000-0000-4000-8000-0000000000a1");
  auto termination = parsed(parse_transfer_termination_message, kTermination);
  CHECK(termination.code == "policy.refused");
  auto process = parsed(parse_transfer_process, kProcess);
  CHECK(process.state == S::kStarted);
  auto error = parsed(parse_transfer_error, kError);
  CHECK(error.reason == std::vector<json>{"The transfer process is COMPLETED."});

  // Every member is known, so writing the value back gives the document itself.
  const std::vector<std::pair<json, const char*>> written = {
      {to_json(request), kRequest},       {to_json(pull), kRequestPull},
      {to_json(start), kStart},           {to_json(suspension), kSuspension},
      {to_json(completion), kCompletion}, {to_json(termination), kTermination},
      {to_json(process), kProcess},       {to_json(error), kError}};
  for (const auto& [j, text] : written)
    CHECK(j == json::parse(text));
}

TEST_CASE("parse_transfer_message picks the reader by @type", "[protocol]") {
  check_dispatch<TransferMessage, TransferMessageKind>(parse_transfer_message,
                                                       "a transfer process message",
                                                       {{kRequest, K::kRequest},
                                                        {kRequestPull, K::kRequest},
                                                        {kStart, K::kStart},
                                                        {kSuspension, K::kSuspension},
                                                        {kCompletion, K::kCompletion},
                                                        {kTermination, K::kTermination}});

  // Documents of the family that are not messages, and a known @type refused by its reader.
  CHECK(parse_transfer_message(json::parse(kProcess)).status().message() ==
        "@type: \"TransferProcess\" is not a transfer process message");
  CHECK(parse_transfer_message(json::parse(kError)).status().message() ==
        "@type: \"TransferError\" is not a transfer process message");
  CHECK(parse_transfer_message(edited(json::parse(kStart), "/consumerPid", kNone))
            .status()
            .message() == "consumerPid: missing");
  CHECK(parse_transfer_message(edited(json::parse(kStart), "/dataAddress/endpointType", kNone))
            .status()
            .message() == "dataAddress.endpointType: missing");
}

TEST_CASE("every transfer message round-trips through JSON text", "[protocol]") {
  const json reason_object = {{"rule", "permission[0]"}, {"constraint", 1}};
  const DataAddress full{"https://w3id.org/idsa/v4.1/HTTP",
                         "https://c.example/in",
                         {{"authorization", "t"}, {"authType", "bearer"}, {"empty", ""}}};
  const DataAddress bare{"urn:dsx:relay", std::nullopt, {}};

  check_round_trip(TransferRequestMessage{"urn:c", "urn:a", "dsx:push", full, "https://c/"},
                   parse_transfer_request_message, "TransferRequestMessage");
  check_round_trip(TransferRequestMessage{"urn:c", "urn:a", "dsx:pull", bare, "https://c/"},
                   parse_transfer_request_message, "TransferRequestMessage");
  check_round_trip(TransferRequestMessage{"urn:c", "urn:a", "dsx:pull", std::nullopt, "https://c"},
                   parse_transfer_request_message, "TransferRequestMessage");
  for (const std::optional<DataAddress>& a :
       {std::optional(full), std::optional(bare), std::optional<DataAddress>()})
    check_round_trip(TransferStartMessage{"urn:p", "urn:c", a}, parse_transfer_start_message,
                     "TransferStartMessage");
  check_round_trip(TransferSuspensionMessage{"urn:p", "urn:c", std::nullopt, {}},
                   parse_transfer_suspension_message, "TransferSuspensionMessage");
  check_round_trip(TransferSuspensionMessage{"urn:p", "urn:c", "", {json("why"), reason_object}},
                   parse_transfer_suspension_message, "TransferSuspensionMessage");
  check_round_trip(TransferCompletionMessage{"urn:p", "urn:c"}, parse_transfer_completion_message,
                   "TransferCompletionMessage");
  check_round_trip(TransferTerminationMessage{"urn:p", "urn:c", std::nullopt, {}},
                   parse_transfer_termination_message, "TransferTerminationMessage");
  check_round_trip(TransferTerminationMessage{"urn:p", "urn:c", "7", {reason_object}},
                   parse_transfer_termination_message, "TransferTerminationMessage");
  for (TransferState s : kTransferStates)
    check_round_trip(TransferProcess{"urn:p", "urn:c", s}, parse_transfer_process,
                     "TransferProcess");
  check_round_trip(TransferError{"urn:p", "urn:c", "400", {reason_object}}, parse_transfer_error,
                   "TransferError");
  check_round_trip(TransferError{"", "", std::nullopt, {}}, parse_transfer_error, "TransferError");

  // The writers spell every member as the schemas do, and leave out what is absent.
  CHECK(to_json(TransferSuspensionMessage{"urn:p", "urn:c", "7", {json("x")}}) ==
        json::parse(R"({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "TransferSuspensionMessage", "providerPid": "urn:p", "consumerPid": "urn:c",
            "code": "7", "reason": ["x"]})"));
  CHECK(to_json(bare) ==
        json::parse(R"({"@type": "DataAddress", "endpointType": "urn:dsx:relay"})"));
  CHECK_FALSE(
      to_json(TransferStartMessage{"urn:p", "urn:c", std::nullopt}).contains("dataAddress"));
  CHECK(to_json(TransferProcess{"urn:p", "urn:c", S::kSuspended}).at("state") == "SUSPENDED");
}

TEST_CASE("documented transfer variants the readers accept", "[protocol]") {
  for (const DocKind& k : doc_kinds()) {
    // R1: the context as one string, or among other contexts.
    accepts(k.type, edited(json::parse(k.example), "/@context", json(kDspContext)));
    accepts(k.type,
            edited(json::parse(k.example), "/@context",
                   json::array({"https://profile.example/ctx.jsonld", std::string(kDspContext)})));
    // Unknown members are ignored.
    accepts(k.type, edited(json::parse(k.example), "/extension", json{{"x", 1}}));
  }
  // T3: a data address without endpoint or endpointProperties, with unknown members.
  for (const char* type : {"TransferRequestMessage", "TransferStartMessage"}) {
    json doc = json::parse(find_kind(doc_kinds(), type).example);
    accepts(type, edited(doc, "/dataAddress/endpoint", kNone));
    accepts(type, edited(doc, "/dataAddress/endpointProperties", kNone));
    accepts(type, edited(doc, "/dataAddress/endpointProperties/0/value", json("")));
    accepts(type, edited(doc, "/dataAddress/region", json("eu")));
    // T4: the reader does not decide whether a data address belongs there.
    accepts(type, edited(doc, "/dataAddress", kNone));
  }
  // T5: suspension, termination and error without code or reason; any JSON as a reason; an
  // empty code.
  for (const char* type :
       {"TransferSuspensionMessage", "TransferTerminationMessage", "TransferError"}) {
    json doc = json::parse(find_kind(doc_kinds(), type).example);
    accepts(type, edited(edited(doc, "/code", kNone), "/reason", kNone));
    accepts(type, edited(doc, "/reason", json::array({json::object({{"rule", 1}}), 2, nullptr})));
    accepts(type, edited(doc, "/code", json("")));
  }
  // R10: the error's pids may be empty.
  accepts("TransferError",
          edited(edited(json::parse(kError), "/providerPid", json("")), "/consumerPid", json("")));
  // T6: every state.
  for (const char* state : {"REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"})
    accepts("TransferProcess", edited(json::parse(kProcess), "/state", json(state)));
}

TEST_CASE("malformed transfer messages are refused with the field's path", "[protocol]") {
  Refusals cases(doc_kinds());
  cases.add_envelopes("TransferMessage");
  for (const char* type :
       {"TransferStartMessage", "TransferSuspensionMessage", "TransferCompletionMessage",
        "TransferTerminationMessage", "TransferProcess"})
    cases.add_required_ids(type, {"providerPid", "consumerPid"});
  // T1, T2.
  cases.add_required_ids("TransferRequestMessage",
                         {"consumerPid", "agreementId", "format", "callbackAddress"});
  cases.add_error_ids("TransferError");
  for (const char* type :
       {"TransferSuspensionMessage", "TransferTerminationMessage", "TransferError"})
    cases.add_explanation(type);
  cases.add_states("TransferProcess", "a transfer process state");
  cases.add("TransferProcess", kProcess, "/state", json("dspace:STARTED"),
            "state: \"dspace:STARTED\" is not a transfer process state");
  cases.add("TransferProcess", kProcess, "/state", json("FINALIZED"),
            "state: \"FINALIZED\" is not a transfer process state");

  // T3: the data address, in both messages that carry one.
  for (const char* type : {"TransferRequestMessage", "TransferStartMessage"}) {
    const char* base = cases.example(type);
    cases.add(type, base, "/dataAddress", json("https://c.example/in"),
              "dataAddress: expected an object, not a string");
    cases.add(type, base, "/dataAddress", json::array(),
              "dataAddress: expected an object, not an array");
    cases.add(type, base, "/dataAddress", json(nullptr),
              "dataAddress: expected an object, not null");
    cases.add(type, base, "/dataAddress/@type", kNone, "dataAddress.@type: missing");
    cases.add(type, base, "/dataAddress/@type", json("dspace:DataAddress"),
              "dataAddress.@type: \"dspace:DataAddress\" is not DataAddress");
    cases.add(type, base, "/dataAddress/@type", json(1),
              "dataAddress.@type: expected a string, not a number");
    cases.add_required_ids(type, {"endpointType"}, "dataAddress.");
    cases.add_optional_ids(type, {"endpoint"}, "dataAddress.");
    cases.add(type, base, "/dataAddress/endpointProperties", json::object(),
              "dataAddress.endpointProperties: expected an array, not an object");
    cases.add(type, base, "/dataAddress/endpointProperties", json::array(),
              "dataAddress.endpointProperties: must hold at least one item when present");
    cases.add(type, base, "/dataAddress/endpointProperties/0", json("authType=bearer"),
              "dataAddress.endpointProperties[0]: expected an object, not a string");
    cases.add(type, base, "/dataAddress/endpointProperties/0/@type", kNone,
              "dataAddress.endpointProperties[0].@type: missing");
    cases.add(type, base, "/dataAddress/endpointProperties/0/@type", json("Property"),
              "dataAddress.endpointProperties[0].@type: \"Property\" is not EndpointProperty");
    cases.add(type, base, "/dataAddress/endpointProperties/0/name", kNone,
              "dataAddress.endpointProperties[0].name: missing");
    cases.add(type, base, "/dataAddress/endpointProperties/0/name", json(""),
              "dataAddress.endpointProperties[0].name: must not be empty");
    cases.add(type, base, "/dataAddress/endpointProperties/0/name", json::array(),
              "dataAddress.endpointProperties[0].name: expected a string, not an array");
    cases.add(type, base, "/dataAddress/endpointProperties/0/value", kNone,
              "dataAddress.endpointProperties[0].value: missing");
    cases.add(type, base, "/dataAddress/endpointProperties/0/value", json(42),
              "dataAddress.endpointProperties[0].value: expected a string, not a number");
  }
  // The path names the entry.
  cases.add("TransferRequestMessage", kRequest, "/dataAddress/endpointProperties/1/@type", json(2),
            "dataAddress.endpointProperties[1].@type: expected a string, not a number");
  CHECK(cases.check() > 200);
}

TEST_CASE("the transfer readers never throw, whatever stands in any member", "[protocol]") {
  std::vector<std::string> pointers = {
      "/@context",    "/@context/0", "/@type", "/providerPid", "/consumerPid", "/callbackAddress",
      "/agreementId", "/format",     "/state", "/code",        "/reason",      "/reason/0"};
  for (const char* member :
       {"", "/@type", "/endpointType", "/endpoint", "/endpointProperties", "/endpointProperties/0",
        "/endpointProperties/0/@type", "/endpointProperties/0/name", "/endpointProperties/0/value"})
    pointers.push_back(std::string("/dataAddress") + member);
  CHECK(check_readers_never_throw(doc_kinds(), pointers, checker(parse_transfer_message)) > 500);
}

TEST_CASE("transfer state and message names", "[protocol]") {
  const std::vector<std::string> names = {"REQUESTED", "STARTED", "SUSPENDED", "COMPLETED",
                                          "TERMINATED"};
  for (size_t i = 0; i < kTransferStates.size(); ++i) {
    CHECK(to_string(kTransferStates[i]) == names[i]);
    CHECK(parse_transfer_state(names[i]) == kTransferStates[i]);
  }
  CHECK_FALSE(parse_transfer_state("started"));
  CHECK_FALSE(parse_transfer_state("dspace:STARTED"));
  CHECK_FALSE(parse_transfer_state(""));
  const std::vector<std::string> types = {"TransferRequestMessage", "TransferStartMessage",
                                          "TransferSuspensionMessage", "TransferCompletionMessage",
                                          "TransferTerminationMessage"};
  for (size_t i = 0; i < kTransferMessageKinds.size(); ++i)
    CHECK(to_string(kTransferMessageKinds[i]) == types[i]);
  for (TransferState s : kTransferStates)
    CHECK(is_final(s) == (s == S::kCompleted || s == S::kTerminated));
}

TEST_CASE("the full transition table of the DSP 2025-1 transfer machine", "[protocol]") {
  // Written out from the DSP 2025-1 text, figure and HTTPS binding, independently of
  // transfer.cpp: every valid (state, message, sender) and the state it leads to. Everything
  // else is invalid.
  const std::vector<Transition<TransferState, TransferMessageKind>> valid = {
      {kNone, K::kRequest, kC, S::kRequested},      // the consumer asks
      {S::kRequested, K::kStart, kP, S::kStarted},  // the provider starts
      {S::kSuspended, K::kStart, kP, S::kStarted},  // restart by the provider
      {S::kSuspended, K::kStart, kC, S::kStarted},  // restart by the consumer (figure, binding)
      {S::kStarted, K::kSuspension, kC, S::kSuspended},
      {S::kStarted, K::kSuspension, kP, S::kSuspended},
      {S::kStarted, K::kCompletion, kC, S::kCompleted},
      {S::kStarted, K::kCompletion, kP, S::kCompleted},
      {S::kRequested, K::kTermination, kC, S::kTerminated},
      {S::kRequested, K::kTermination, kP, S::kTerminated},
      {S::kStarted, K::kTermination, kC, S::kTerminated},
      {S::kStarted, K::kTermination, kP, S::kTerminated},
      {S::kSuspended, K::kTermination, kC, S::kTerminated},
      {S::kSuspended, K::kTermination, kP, S::kTerminated},
  };

  CHECK(check_transitions(kTransferStates, kTransferMessageKinds, valid,
                          "without a transfer process") == 46);
}

TEST_CASE("refused transfer transitions say why", "[protocol]") {
  auto why = [](std::optional<TransferState> from, TransferMessageKind kind, Role sender) {
    return refusal_of(from, kind, sender);
  };
  CHECK(why(kNone, K::kRequest, kP) ==
        "TransferRequestMessage from the provider without a transfer process: only the consumer "
        "requests a transfer");
  CHECK(why(S::kStarted, K::kRequest, kP) ==
        "TransferRequestMessage from the provider in state STARTED: only the consumer requests a "
        "transfer");
  CHECK(why(S::kRequested, K::kRequest, kC) ==
        "TransferRequestMessage from the consumer in state REQUESTED: the consumer requests a "
        "transfer only to start a transfer process");
  CHECK(why(kNone, K::kStart, kP) ==
        "TransferStartMessage from the provider without a transfer process: only a "
        "TransferRequestMessage from the consumer starts a transfer process");
  CHECK(why(kNone, K::kTermination, kC) ==
        "TransferTerminationMessage from the consumer without a transfer process: only a "
        "TransferRequestMessage from the consumer starts a transfer process");
  CHECK(why(S::kRequested, K::kStart, kC) ==
        "TransferStartMessage from the consumer in state REQUESTED: the consumer starts a "
        "transfer only in state SUSPENDED");
  CHECK(why(S::kStarted, K::kStart, kP) ==
        "TransferStartMessage from the provider in state STARTED: the provider starts a transfer "
        "only in state REQUESTED or SUSPENDED");
  CHECK(why(S::kSuspended, K::kSuspension, kC) ==
        "TransferSuspensionMessage from the consumer in state SUSPENDED: the consumer suspends a "
        "transfer only in state STARTED");
  CHECK(why(S::kSuspended, K::kCompletion, kP) ==
        "TransferCompletionMessage from the provider in state SUSPENDED: the provider completes "
        "a transfer only in state STARTED");
  CHECK(why(S::kRequested, K::kCompletion, kC) ==
        "TransferCompletionMessage from the consumer in state REQUESTED: the consumer completes "
        "a transfer only in state STARTED");
  CHECK(why(S::kCompleted, K::kTermination, kP) ==
        "TransferTerminationMessage from the provider in state COMPLETED: COMPLETED is a final "
        "state: it accepts no message");
  CHECK(why(S::kTerminated, K::kStart, kC) ==
        "TransferStartMessage from the consumer in state TERMINATED: TERMINATED is a final "
        "state: it accepts no message");
}

TEST_CASE("whole transfers run through the machine", "[protocol]") {
  auto run = [](std::optional<TransferState> state,
                const std::vector<std::pair<TransferMessageKind, Role>>& steps) {
    return run_machine(state, steps);
  };
  // A finite push: requested, started, completed by the consumer after the last chunk.
  CHECK(run(kNone, {{K::kRequest, kC}, {K::kStart, kP}, {K::kCompletion, kC}}) == S::kCompleted);
  // Suspended by the provider, restarted by the consumer, suspended by the consumer, restarted
  // by the provider, completed by the provider.
  CHECK(run(kNone, {{K::kRequest, kC},
                    {K::kStart, kP},
                    {K::kSuspension, kP},
                    {K::kStart, kC},
                    {K::kSuspension, kC},
                    {K::kStart, kP},
                    {K::kCompletion, kP}}) == S::kCompleted);
  // Refused before it started (the broker's policy check), and given up while suspended.
  CHECK(run(kNone, {{K::kRequest, kC}, {K::kTermination, kP}}) == S::kTerminated);
  CHECK(run(kNone,
            {{K::kRequest, kC}, {K::kStart, kP}, {K::kSuspension, kC}, {K::kTermination, kC}}) ==
        S::kTerminated);
}

TEST_CASE("transfer repeat candidates are the messages that produce the state", "[protocol]") {
  // Written out independently: the (message, sender) pairs whose retry may arrive in each state.
  const std::vector<Repeat<TransferState, TransferMessageKind>> repeats = {
      {S::kRequested, K::kRequest, kC},                                     // lost ACK of a request
      {S::kStarted, K::kStart, kP},          {S::kStarted, K::kStart, kC},  // start or restart
      {S::kSuspended, K::kSuspension, kC},   {S::kSuspended, K::kSuspension, kP},
      {S::kCompleted, K::kCompletion, kC},   {S::kCompleted, K::kCompletion, kP},
      {S::kTerminated, K::kTermination, kC}, {S::kTerminated, K::kTermination, kP},
  };
  check_repeat_candidates(kTransferStates, kTransferMessageKinds, repeats);
}
