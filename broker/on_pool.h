#pragma once
// on_pool: run a blocking call (SQLite, the log, a file) on the worker pool from a coroutine on
// an I/O thread, and resume the coroutine on its own executor with the call's result.
//
//   HttpResponse r = co_await on_pool(workers, [&] { return router.handle(request, caller); });
//   Result<Access> a = co_await on_pool(workers, [&] { return authority.data_access(...); });
//
// Why not co_await asio::co_spawn(workers, ...): that starts a coroutine on the pool, whose
// start, completion and frame destruction are each a handler posted to the pool, and every post
// can wake an idle worker. Under load the broker's workers blocked and woke about three times per
// request for it, and a context switch is among the dearest things a request costs here
// (docs/performance.md, "Contract negotiation"). This posts the call once to the pool and its
// result once back to the coroutine's executor. The result may be of any movable type (void
// too); it need not be default-constructible.
//
// The call runs on a pool thread, at most once; references it captures must outlive the
// co_await (they do when they live in the awaiting coroutine's frame). An exception thrown by the
// call is rethrown in the awaiting coroutine. Thread-safe as Asio's post is.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace dsx::broker {

template <typename Executor, typename F>
auto on_pool(Executor pool, F call) -> boost::asio::awaitable<std::invoke_result_t<F&>> {
  namespace asio = boost::asio;
  using R = std::invoke_result_t<F&>;
  // What travels back: the result, or monostate for a void call; empty when the call threw.
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  std::optional<Value> value =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                    void(std::exception_ptr, std::optional<Value>)>(
          [pool](auto handler, F f) {
            auto back = asio::make_work_guard(asio::get_associated_executor(handler));
            asio::post(pool, [handler = std::move(handler), f = std::move(f),
                              back = std::move(back)]() mutable {
              std::exception_ptr error;
              std::optional<Value> result;
              try {
                if constexpr (std::is_void_v<R>) {
                  f();
                  result.emplace();
                } else {
                  result.emplace(f());
                }
              } catch (...) {
                error = std::current_exception();
              }
              auto to = back.get_executor();
              asio::dispatch(
                  to, [handler = std::move(handler), error, result = std::move(result)]() mutable {
                    std::move(handler)(error, std::move(result));
                  });
            });
          },
          asio::use_awaitable, std::move(call));
  // use_awaitable rethrows `error` above; without one, the value is there.
  if constexpr (!std::is_void_v<R>) co_return std::move(*value);
}

}  // namespace dsx::broker
