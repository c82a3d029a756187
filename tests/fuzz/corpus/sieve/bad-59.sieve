# café
keep; é