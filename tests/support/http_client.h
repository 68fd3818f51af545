// A blocking HTTP/1.1 client for tests (libcurl easy): one request, the whole answer.
#pragma once

#include <curl/curl.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace testing_support {

struct HttpResponse {
  int status = 0;                              // 0: no response (curl_error says why)
  std::map<std::string, std::string> headers;  // lowercase names; the last value wins
  std::string body;
  std::string curl_error;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline HttpResponse HttpRequest(const std::string& method, const std::string& url,
                                const std::vector<std::string>& headers = {}, long timeout_ms = 10000,
                                const std::string* body = nullptr) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
        static_cast<HttpResponse*>(out)->body.append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(
      curl, CURLOPT_HEADERFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
        std::string line(data, size * count);
        const size_t colon = line.find(':');
        if (colon != std::string::npos && line.rfind("HTTP/", 0) != 0) {
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          std::string value = line.substr(colon + 1);
          while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
          while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
          static_cast<HttpResponse*>(out)->headers[name] = value;
        }
        return size * count;
      });
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
  } else {
    response.curl_error = curl_easy_strerror(code);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return response;
}

inline HttpResponse HttpGet(const std::string& url, const std::vector<std::string>& headers = {}) {
  return HttpRequest("GET", url, headers);
}

inline HttpResponse HttpPost(const std::string& url, const std::string& body,
                             const std::vector<std::string>& headers = {}) {
  return HttpRequest("POST", url, headers, 10000, &body);
}

}  // namespace testing_support
