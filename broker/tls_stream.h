#pragma once
// TlsStream: the server side of one TLS connection, driven by OpenSSL directly on a non-blocking
// TCP socket, with the Asio/Beast async stream interface (async_read_some, async_write_some),
// a handshake, a close_notify shutdown and a deadline.
//
// Why not asio::ssl::stream: it keeps a BIO pair (2 x 17 KiB) and two record buffers
// (2 x 17 KiB) in every connection for its whole life, busy or idle: 68 KiB before OpenSSL's own
// state, over the broker's budget of 64 KiB per idle connection (docs/performance.md). Here
// OpenSSL reads and writes the socket itself (SSL_set_fd) and the stream waits for readiness
// with socket::async_wait; SSL_MODE_RELEASE_BUFFERS lets OpenSSL free its record buffers
// whenever they are empty. An idle connection holds its SSL object and its socket, nothing more.
//
// Ownership: owns the socket and the SSL object; the SSL holds a reference to the SSL_CTX.
// Pending operations share the state, so it stays valid until they complete.
// Threading: every call and every completion happens on the socket's executor (a strand). At
// most one read-side operation (handshake, read, wait_readable, shutdown) and one write at a
// time, as with any Asio stream.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace dsx::broker {

class TlsStream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using error_code = boost::system::error_code;
  using duration = std::chrono::steady_clock::duration;

  // A server-side stream over `socket` with a new SSL object from `context`. valid() is false
  // when OpenSSL could not make one (out of memory); every operation then fails.
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  bool valid() const { return core_->ssl != nullptr; }
  executor_type get_executor() { return core_->socket.get_executor(); }
  SSL* native_handle() const { return core_->ssl; }
  boost::asio::ip::tcp::socket& socket() { return core_->socket; }

  // Operations started until the deadline fail with beast::error::timeout once it passes, and
  // a pending one is cancelled; as beast::tcp_stream. A new deadline replaces the old one.
  void expires_after(duration timeout);
  void expires_never();
  // Cancels pending operations (they complete with operation_aborted).
  void cancel();

  template <typename Token>
  auto async_handshake(Token&& token) {
    return run([](SSL* ssl, std::size_t&) { return SSL_do_handshake(ssl); },
               std::forward<Token>(token));
  }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer target = first(buffers);
    return run(
        [target](SSL* ssl, std::size_t& n) {
          if (target.size() == 0) return 1;
          return SSL_read_ex(ssl, target.data(), target.size(), &n);
        },
        std::forward<Token>(token));
  }

  // Writes a prefix of `buffers`. Several small buffers (an HTTP header and its body) go out
  // in one TLS record: they are copied together first, up to one record's worth.
  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    auto data = std::make_shared<std::string>();
    boost::asio::const_buffer source = first(buffers);
    const std::size_t total = boost::asio::buffer_size(buffers);
    if (source.size() < kRecordSize && total > source.size()) {
      data->resize(std::min(total, kRecordSize));
      boost::asio::buffer_copy(boost::asio::buffer(*data), buffers);
      source = boost::asio::buffer(*data);
    }
    return run(
        [source, data](SSL* ssl, std::size_t& n) {
          if (source.size() == 0) return 1;
          return SSL_write_ex(ssl, source.data(), source.size(), &n);
        },
        std::forward<Token>(token));
  }

  // Completes when the peer has sent something (or closed), without holding a buffer: the
  // wait of an idle keep-alive connection.
  template <typename Token>
  auto async_wait_readable(Token&& token) {
    return run(
        [waited = false](SSL* ssl, std::size_t&) mutable {
          if (waited || SSL_has_pending(ssl)) return 1;
          // Not an SSL call: ask for one read wait, as SSL_read would.
          waited = true;
          return kWantRead;
        },
        std::forward<Token>(token));
  }

  // Sends close_notify and waits for the peer's.
  template <typename Token>
  auto async_shutdown(Token&& token) {
    return run(
        [](SSL* ssl, std::size_t&) {
          int r = SSL_shutdown(ssl);
          if (r == 0) r = SSL_shutdown(ssl);  // ours is sent; now read the peer's
          return r;
        },
        std::forward<Token>(token));
  }

 private:
  static constexpr std::size_t kRecordSize = 16 * 1024;
  static constexpr std::size_t kReadAheadBytes = 64 * 1024;
  static constexpr int kWantRead = -1000;  // from a step that is not an SSL call

  struct Core {
    Core(boost::asio::ip::tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    ~Core() {
      if (ssl) SSL_free(ssl);
    }
    boost::asio::ip::tcp::socket socket;
    boost::asio::steady_timer timer;
    SSL* ssl = nullptr;
    bool timed_out = false;
    uint64_t deadline_generation = 0;  // tells a stale timer completion from the current one
  };

  // One SSL step, repeated after each readiness wait until it succeeds or fails. The step
  // returns what the SSL call returned; `n` receives the bytes moved.
  template <typename Step>
  struct Op {
    std::shared_ptr<Core> core;
    Step step;
    bool started = false;
    error_code result{};
    std::size_t n = 0;
    bool done = false;

    template <typename Self>
    void operator()(Self& self, error_code waited = {}) {
      if (done) return self.complete(result, n);  // posted from the initiating call
      const bool initiating = !started;
      started = true;
      if (waited) {
        result = core->timed_out ? error_code(boost::beast::error::timeout) : waited;
      } else if (core->timed_out) {
        result = boost::beast::error::timeout;
      } else if (!core->ssl) {
        result = boost::asio::error::no_memory;
      } else {
        ERR_clear_error();
        errno = 0;
        const int r = step(core->ssl, n);
        if (r <= 0) {
          const int kind = r == kWantRead ? SSL_ERROR_WANT_READ : SSL_get_error(core->ssl, r);
          if (kind == SSL_ERROR_WANT_READ)
            return core->socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                                           std::move(self));
          if (kind == SSL_ERROR_WANT_WRITE)
            return core->socket.async_wait(boost::asio::ip::tcp::socket::wait_write,
                                           std::move(self));
          n = 0;
          result = error_of(kind);
        }
      }
      // Asio's rule: a handler never runs inside the call that started its operation.
      if (initiating) {
        done = true;
        return boost::asio::post(std::move(self));
      }
      self.complete(result, n);
    }
  };

  template <typename Step, typename Token>
  auto run(Step step, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        Op<Step>{core_, std::move(step)}, token, core_->socket);
  }

  template <typename Buffers>
  static auto first(const Buffers& buffers) {
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    using Buffer = std::decay_t<decltype(*it)>;
    for (; it != end; ++it)
      if (Buffer(*it).size() != 0) return Buffer(*it);
    return Buffer();
  }

  // The error of a failed SSL call, read from this thread's OpenSSL error queue.
  static error_code error_of(int ssl_error);

  std::shared_ptr<Core> core_;
};

// Beast's customisation points, so that a websocket::stream<TlsStream&> (the control channel)
// can close the connection: close_notify on a graceful close, closing the socket on a timeout.
void beast_close_socket(TlsStream& stream);
void teardown(boost::beast::role_type role, TlsStream& stream, boost::system::error_code& ec);
template <typename Handler>
void async_teardown(boost::beast::role_type, TlsStream& stream, Handler&& handler) {
  auto executor = boost::asio::get_associated_executor(handler, stream.get_executor());
  stream.async_shutdown(boost::asio::bind_executor(
      executor,
      [h = std::forward<Handler>(handler)](boost::system::error_code ec, std::size_t) mutable {
        if (ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated)
          ec = {};  // the peer closed first: the teardown is done
        std::move(h)(ec);
      }));
}

}  // namespace dsx::broker
