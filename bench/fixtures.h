#pragma once
// The inputs dsx_policy_bench measures: the policies as JSON text, compiled, with a request and a
// state each engine call is asked about. Built once before any timing, then only read, so the
// benchmarks may share them. A fixture that does not parse, or does not decide as documented, is
// a broken benchmark: make_fixtures() prints why and aborts.

#include <cstddef>
#include <string>

#include "policy/policy.h"
#include "policy/request.h"

namespace dsx::bench {

// One policy with the request and state a benchmark evaluates against it.
struct Case {
  std::string text;  // the policy as JSON-LD
  policy::Policy policy;
  policy::Request request{"", "http://www.w3.org/ns/odrl/2/use", ""};
  policy::State state;
};

struct Fixtures {
  // (a) One permission with three constraints: purpose isAnyOf (2 IRIs), a dateTime window (an
  // `and` of gteq and lt), spatial eq. The request satisfies all three, so every constraint is
  // evaluated: the permit is the slow outcome of this policy.
  Case small;
  // (b) One permission whose single constraint is an `or` of kLargeWindows `and`s, each a
  // dateTime window [start, end). The windows are disjoint and in time order and the state's time
  // lies in the last one, so the engine evaluates both halves of every window (start holds, end
  // fails) before the last one permits: 2 * kLargeWindows atomic comparisons per decision.
  Case large;
  // (c) A realistic Agreement of about 2 KiB: parties, a permission with four constraints and a
  // duty, a prohibition with a constraint, an obligation.
  std::string parse_text;
};

inline constexpr std::size_t kLargeWindows = 300;

Fixtures make_fixtures();

}  // namespace dsx::bench
