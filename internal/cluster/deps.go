package cluster

import _ "github.com/redis/go-redis/v9" // the Redis registry (redis.go)
