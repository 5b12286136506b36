// Precompiled for every test target: the library and Catch.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>
