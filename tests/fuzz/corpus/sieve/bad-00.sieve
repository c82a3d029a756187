keep
stop;