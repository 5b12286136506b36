// A consumer: publishes and reads back through the library it found.
#include <courier/courier.hpp>
#include <iostream>

int main() {
    courier::broker hub;
    auto r = hub.publish("", "room", R"({"hello": "world"})");
    courier::read_result out;
    hub.read("", "room", "earliest", out);
    if (r.ec || out.messages.size() != 1 || out.messages[0]->data() != R"({"hello":"world"})") return 1;
    std::cout << out.messages[0]->envelope() << "\n";
}
