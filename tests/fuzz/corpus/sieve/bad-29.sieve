require "vacation-seconds";
vacation :days 1 :seconds 30 "x";