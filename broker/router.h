#pragma once
// Routes: method + path pattern ("/catalog/datasets/{id}") -> handler, with the roles allowed to
// call it. The router is filled once at start-up and read-only afterwards, so any number of
// threads may call handle() at once. Handlers are plain functions of the request and the caller;
// the server runs them on its worker pool (they may block on SQLite), never on an I/O thread.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/http.h"
#include "certs/identity.h"

namespace dsx::broker {

// Who is calling: the identity read from the verified client certificate, and that certificate
// (PEM), against which the broker checks documents the caller signs (certs/signature.h).
struct Caller {
  certs::Identity identity;
  std::string certificate_pem;
  bool has_role(std::string_view role) const;
  bool has_any_role(const std::vector<std::string>& roles) const;
};

using PathParams = std::map<std::string, std::string, std::less<>>;
using Handler = std::function<HttpResponse(const HttpRequest&, const Caller&, const PathParams&)>;

class Router {
 public:
  struct Route {
    std::string method, pattern, name;
    std::vector<std::string> roles;  // empty: any authenticated participant
    std::string error_type;          // the DSP error type of this route family
    Handler handler;
  };

  // `name` labels the route in metrics and logs ("catalog.request").
  void add(Route route);

  // The route's reply, or 404 / 405 / 403 (with the roles it needs). `route_name` receives the
  // matched route's name ("unknown" when none matched).
  HttpResponse handle(const HttpRequest& request, const Caller& caller,
                      std::string* route_name) const;

  const std::vector<Route>& routes() const { return routes_; }

  // Called (on the worker thread, before the reply is sent) for every 4xx reply to a
  // participant: the broker appends the refusal to the provenance log.
  using RefusalHook = std::function<void(const Caller&, const HttpRequest&, const HttpResponse&,
                                         const std::string& route)>;
  void on_refusal(RefusalHook hook) { on_refusal_ = std::move(hook); }
  // Runs the hook for a refusal of a route served outside handle() (the data routes, which
  // stream). On a worker thread: the hook writes the provenance log.
  void report_refusal(const Caller& caller, const HttpRequest& request,
                      const HttpResponse& response, const std::string& route) const {
    if (on_refusal_) on_refusal_(caller, request, response, route);
  }

 private:
  static bool match(std::string_view pattern, std::string_view path, PathParams& params);
  HttpResponse dispatch(const HttpRequest& request, const Caller& caller,
                        std::string* route_name) const;
  std::vector<Route> routes_;
  RefusalHook on_refusal_;
};

}  // namespace dsx::broker
