#include "broker/router.h"

#include <algorithm>

namespace dsx::broker {

bool Caller::has_role(std::string_view role) const {
  return std::find(identity.roles.begin(), identity.roles.end(), role) != identity.roles.end();
}

bool Caller::has_any_role(const std::vector<std::string>& roles) const {
  return std::any_of(roles.begin(), roles.end(), [&](const std::string& r) { return has_role(r); });
}

void Router::add(Route route) {
  routes_.push_back(std::move(route));
}

bool Router::match(std::string_view pattern, std::string_view path, PathParams& params) {
  params.clear();
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const std::string_view pseg = pattern.substr(0, pattern.find('/'));
    const std::string_view seg = path.substr(0, path.find('/'));
    if (pseg.size() > 2 && pseg.front() == '{' && pseg.back() == '}') {
      if (seg.empty()) return false;
      params.emplace(std::string(pseg.substr(1, pseg.size() - 2)), std::string(seg));
    } else if (pseg != seg) {
      return false;
    }
    pattern.remove_prefix(pseg.size());
    path.remove_prefix(seg.size());
  }
  return true;
}

HttpResponse Router::handle(const HttpRequest& request, const Caller& caller,
                            std::string* route_name) const {
  std::string name;
  HttpResponse r = dispatch(request, caller, &name);
  if (r.status >= 400 && r.status < 500 && on_refusal_) on_refusal_(caller, request, r, name);
  if (route_name) *route_name = name;
  return r;
}

HttpResponse Router::dispatch(const HttpRequest& request, const Caller& caller,
                              std::string* route_name) const {
  PathParams params;
  std::vector<std::string> allowed;
  const Route* found = nullptr;
  for (const Route& r : routes_) {
    if (!match(r.pattern, request.path, params)) continue;
    if (r.method != request.method) {
      allowed.push_back(r.method);
      continue;
    }
    found = &r;
    break;
  }
  if (!found) {
    if (route_name) *route_name = "unknown";
    if (!allowed.empty()) {
      std::string methods;
      for (const auto& m : allowed)
        methods += (methods.empty() ? "" : ", ") + m;
      HttpResponse r = error_response(
          405, "Error", "method-not-allowed",
          {request.method + " is not allowed on " + request.path + " (allowed: " + methods + ")"});
      r.headers.emplace_back("Allow", methods);
      return r;
    }
    return error_response(404, "Error", "not-found", {"no such resource: " + request.path});
  }
  if (route_name) *route_name = found->name;
  if (!found->roles.empty() && !caller.has_any_role(found->roles)) {
    std::string roles;
    for (const auto& r : found->roles)
      roles += (roles.empty() ? "" : " or ") + r;
    return error_response(
        403, found->error_type, "forbidden",
        {request.method + " " + request.path + " needs the role " + roles + "; your certificate (" +
         caller.identity.participant_id + ") does not carry it"});
  }
  return found->handler(request, caller, params);
}

}  // namespace dsx::broker
