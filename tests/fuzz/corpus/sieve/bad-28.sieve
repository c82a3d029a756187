require "vacation";
vacation :seconds 30 "x";