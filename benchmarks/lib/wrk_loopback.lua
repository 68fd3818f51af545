-- For wrk -s: connect to 127.0.0.1 whatever host the URL names, so that https://demo.test:PORT/
-- sends the server name (SNI) demo.test, as a client of that tenant does, without a DNS entry.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
